// Command chart renders the unary throughput of a benchmark run as an SVG
// bar chart: one group of bars per case, one bar per concurrency, each
// labelled with its requests per second and its ratio to Bare.
//
//	go run ./examples/bench -json examples/bench/results.json
//	go run ./examples/bench/chart -in examples/bench/results.json -out examples/bench/throughput.svg
package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"strings"
)

// run is the part of the driver's JSON the chart reads.
type run struct {
	Generated string `json:"generated"`
	Mode      string `json:"mode"`
	Machine   struct {
		CPU        string `json:"cpu"`
		GOMAXPROCS int    `json:"gomaxprocs"`
		GoVersion  string `json:"go_version"`
		LoadBefore string `json:"load_before"`
	} `json:"machine"`
	Unary []struct {
		Name    string `json:"name"`
		Skipped string `json:"skipped"`
		Error   string `json:"error"`
		Runs    []struct {
			Concurrency int     `json:"concurrency"`
			RPS         float64 `json:"rps"`
		} `json:"runs"`
	} `json:"unary"`
}

func main() {
	in := flag.String("in", "examples/bench/results.json", "results JSON written by go run ./examples/bench -json")
	out := flag.String("out", "examples/bench/throughput.svg", "SVG file to write")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("chart: ")
	b, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var r run
	if err := json.Unmarshal(b, &r); err != nil {
		log.Fatalf("%s: %v", *in, err)
	}
	var sb strings.Builder
	if err := render(&sb, &r); err != nil {
		log.Fatalf("%s: %v", *in, err)
	}
	if err := os.WriteFile(*out, []byte(sb.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}

var concurrencies = []int{1, 8, 64}

// Bar colours per concurrency (colour-blind safe).
var colours = []string{"#88ccee", "#44aa99", "#332288"}

const (
	width     = 960
	left      = 190 // room for case names
	right     = 150 // room for the longest value label
	top       = 70
	barH      = 16
	barGap    = 3
	groupGap  = 18
	axisSpace = 40
)

func render(w io.Writer, r *run) error {
	if len(r.Unary) == 0 {
		return errors.New("no unary results")
	}
	maxRPS := 0.0
	bare := map[int]float64{}
	for _, u := range r.Unary {
		for _, l := range u.Runs {
			maxRPS = math.Max(maxRPS, l.RPS)
			if u.Name == "Bare" {
				bare[l.Concurrency] = l.RPS
			}
		}
	}
	if maxRPS <= 0 {
		return errors.New("no throughput measured")
	}
	scaleMax := niceCeil(maxRPS)
	plotW := float64(width - left - right)
	x := func(v float64) float64 { return left + v/scaleMax*plotW }
	groupH := len(concurrencies)*(barH+barGap) - barGap
	height := top + len(r.Unary)*(groupH+groupGap) + axisSpace

	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="%d" y="22" font-size="16" font-weight="bold">Unary GetMessage throughput over loopback TCP (req/s, higher is better)</text>`+"\n", left-180)
	sub := fmt.Sprintf("%s · GOMAXPROCS %d · %s · %s · %s mode · load generator on the same cores", r.Machine.CPU, r.Machine.GOMAXPROCS, r.Machine.GoVersion, r.Generated, r.Mode)
	if r.Machine.LoadBefore != "" {
		sub += " · load average " + r.Machine.LoadBefore
	}
	p(`<text x="%d" y="40" fill="#555555">%s</text>`+"\n", left-180, esc(sub))
	// Legend.
	for i, c := range concurrencies {
		lx := left + i*110
		p(`<rect x="%d" y="50" width="12" height="12" fill="%s"/><text x="%d" y="60">concurrency %d</text>`+"\n", lx, colours[i], lx+16, c)
	}
	// Grid and axis.
	plotBottom := height - axisSpace + 4
	for i := 0; i <= 5; i++ {
		v := scaleMax * float64(i) / 5
		gx := x(v)
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#dddddd"/>`+"\n", gx, top-4, gx, plotBottom)
		p(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%s</text>`+"\n", gx, plotBottom+16, human(v))
	}
	y := top
	for _, u := range r.Unary {
		p(`<text x="%d" y="%d" text-anchor="end" font-weight="bold">%s</text>`+"\n", left-8, y+groupH/2+4, esc(u.Name))
		if u.Skipped != "" || u.Error != "" {
			why := u.Skipped
			if why == "" {
				why = "error: " + u.Error
			}
			if len(why) > 110 {
				why = why[:110] + "…"
			}
			p(`<text x="%d" y="%d" fill="#aa3377">skipped: %s</text>`+"\n", left+6, y+groupH/2+4, esc(why))
			y += groupH + groupGap
			continue
		}
		for i, c := range concurrencies {
			by := y + i*(barH+barGap)
			rps := -1.0
			for _, l := range u.Runs {
				if l.Concurrency == c {
					rps = l.RPS
				}
			}
			if rps < 0 {
				continue
			}
			bw := x(rps) - left
			p(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s, c=%d: %.0f req/s</title></rect>`+"\n", left, by, bw, barH, colours[i], esc(u.Name), c, rps)
			label := human(rps)
			if b := bare[c]; b > 0 && u.Name != "Bare" {
				label += fmt.Sprintf(" (%.2f× Bare)", rps/b)
			}
			p(`<text x="%.1f" y="%d">%s</text>`+"\n", x(rps)+4, by+barH-4, esc(label))
		}
		y += groupH + groupGap
	}
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333333"/>`+"\n", left, top-4, left, plotBottom)
	p("</svg>\n")
	return nil
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

// human renders 12345 as "12.3k".
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func esc(s string) string {
	var sb strings.Builder
	_ = xml.EscapeText(&sb, []byte(s))
	return sb.String()
}
