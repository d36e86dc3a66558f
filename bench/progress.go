package bench

import (
	"fmt"
	"io"
	"os"
	"time"
)

// Progress shows the current step of a long run on the terminal: what is
// running, cells done of the total, elapsed time and an ETA. On a terminal
// it rewrites one line; elsewhere (CI logs) it prints a line at most every
// few seconds.
type Progress struct {
	w      io.Writer
	tty    bool
	start  time.Time
	last   time.Time
	total  time.Duration // planned cost of every cell of the run
	done   time.Duration // planned cost of the cells done
	cells  int
	nDone  int
	active bool // a line is on screen without its newline
}

// NewProgress returns a progress display on w for a run of the given number
// of cell runs and total planned cost.
func NewProgress(w io.Writer, cells int, total time.Duration) *Progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &Progress{w: w, tty: tty, start: now, cells: cells, total: total}
}

// Step shows that step is starting.
func (p *Progress) Step(step string) {
	if p == nil {
		return
	}
	now := time.Now()
	elapsed := now.Sub(p.start)
	eta := "?"
	if p.done > 0 {
		// Scale the remaining planned cost by how the plan held so far.
		left := time.Duration(float64(p.total-p.done) * float64(elapsed) / float64(p.done))
		eta = fmtDuration(left)
	} else if p.total > 0 {
		eta = "~" + fmtDuration(p.total)
	}
	line := fmt.Sprintf("%s  %d/%d  elapsed %s  eta %s", step, p.nDone, p.cells, fmtDuration(elapsed), eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.active = true
		return
	}
	if p.nDone == 0 || now.Sub(p.last) >= 10*time.Second {
		fmt.Fprintln(p.w, line)
		p.last = now
	}
}

// Done records that a step of the given planned cost has finished.
func (p *Progress) Done(cost time.Duration) {
	if p == nil {
		return
	}
	p.done += cost
	p.nDone++
}

// Printf prints a message on its own line without losing the progress line.
func (p *Progress) Printf(format string, args ...any) {
	if p == nil {
		return
	}
	if p.active {
		fmt.Fprint(p.w, "\r\033[K")
		p.active = false
	}
	fmt.Fprintf(p.w, format, args...)
}

// Finish ends the progress line.
func (p *Progress) Finish() {
	if p == nil {
		return
	}
	if p.active {
		fmt.Fprintln(p.w)
		p.active = false
	}
}

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm%02ds", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
