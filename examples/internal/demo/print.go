package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

const nameWidth = 46

type printer struct {
	w     io.Writer
	color bool
}

func (p printer) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p printer) title(s string) {
	fmt.Fprintln(p.w, p.paint("1", s))
}

func (p printer) blank() { fmt.Fprintln(p.w) }

func (p printer) detail(s string) {
	fmt.Fprintln(p.w, p.paint("2", "     "+s))
}

func (p printer) step(s *Step) {
	status := p.paint("32", "ok  ")
	switch {
	case s.Skipped:
		status = p.paint("33", "skip")
	case !s.OK:
		status = p.paint("31;1", "FAIL")
	}
	name := s.Name
	if len(name) < nameWidth {
		name += " " + strings.Repeat(".", nameWidth-len(name)-1)
	}
	fmt.Fprintf(p.w, "%2d  %s %s %7s\n", s.N, name, status, ms(s.Took))
	for _, l := range s.Lines {
		p.detail(l)
	}
	if s.Problem != "" {
		fmt.Fprintln(p.w, p.paint("31", "     unexpected: "+s.Problem))
	}
}

func (p printer) summary(r *Report) {
	p.blank()
	ran, skipped := 0, 0
	for _, s := range r.Steps {
		if s.Skipped {
			skipped++
		} else {
			ran++
		}
	}
	if f := r.Failed(); f != nil {
		fmt.Fprintln(p.w, p.paint("31;1", fmt.Sprintf("step %d (%s) did not behave as expected: %s", f.N, f.Name, f.Problem)))
		return
	}
	msg := fmt.Sprintf("all %d steps behaved as expected in %s", ran, ms(r.Took))
	if skipped > 0 {
		msg += fmt.Sprintf(" (%d skipped)", skipped)
	}
	fmt.Fprintln(p.w, p.paint("32;1", msg))
}

// lockedWriter serialises writes from the many goroutines that log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes b under the lock.
func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
