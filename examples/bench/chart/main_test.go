package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

const sample = `{"generated":"2025-01-01 00:00 UTC","mode":"quick","machine":{"cpu":"AMD <EPYC> & co","gomaxprocs":2,"go_version":"go1.26"},
"unary":[{"name":"Bare","runs":[{"concurrency":1,"rps":5000},{"concurrency":8,"rps":20000},{"concurrency":64,"rps":25000}]},
{"name":"caekit, cache on","runs":[{"concurrency":1,"rps":4500},{"concurrency":8,"rps":18000},{"concurrency":64,"rps":22500}]},
{"name":"caekit, Redis ×3","skipped":"redis-server not on PATH"}]}`

func TestRenderIsWellFormedSVG(t *testing.T) {
	var r run
	if err := json.Unmarshal([]byte(sample), &r); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := render(&sb, &r); err != nil {
		t.Fatal(err)
	}
	svg := sb.String()
	d := xml.NewDecoder(strings.NewReader(svg))
	rects := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// Background, 3 legend swatches, 6 bars.
	if rects != 10 {
		t.Errorf("%d rects, want 10", rects)
	}
	for _, want := range []string{"caekit, cache on", "0.90× Bare", "skipped: redis-server not on PATH", "AMD &lt;EPYC&gt; &amp; co", "25.0k"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestRenderRefusesEmptyResults(t *testing.T) {
	for _, in := range []string{`{}`, `{"unary":[{"name":"Bare"}]}`} {
		var r run
		if err := json.Unmarshal([]byte(in), &r); err != nil {
			t.Fatal(err)
		}
		if err := render(io.Discard, &r); err == nil {
			t.Errorf("render(%s) succeeded", in)
		}
	}
}

func TestNiceCeilAndHuman(t *testing.T) {
	for v, want := range map[float64]float64{1: 1, 3: 5, 23000: 25000, 41000: 50000, 0.7: 1} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
	for v, want := range map[float64]string{999: "999", 1234: "1.23k", 12345: "12.3k", 2_500_000: "2.50M"} {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
}

func Example_human() {
	fmt.Println(human(850), human(4321), human(22069), human(niceCeil(22069)))
	// Output: 850 4.32k 22.1k 25.0k
}
