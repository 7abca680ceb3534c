package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/vitgo/vit/train"
)

// progress shows a bar on a terminal and plain lines otherwise.
type progress struct {
	w        io.Writer
	bar      *progressbar.ProgressBar
	tty      bool
	every    int
	t0       time.Time
	s0       int
	lossEMA  float64
	batch    int
	perEpoch int
}

func newProgress(w io.Writer, r *train.Run) *progress {
	p := &progress{w: w, batch: r.Config.Batch, perEpoch: r.StepsPerEpoch(), t0: time.Now(), s0: r.Step}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.bar = progressbar.NewOptions(r.TotalSteps(),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish())
		_ = p.bar.Set(r.Step)
	}
	p.every = max(1, p.perEpoch/4)
	return p
}

func (p *progress) step(r *train.Run, loss float64) {
	if p.lossEMA == 0 {
		p.lossEMA = loss
	}
	p.lossEMA = 0.9*p.lossEMA + 0.1*loss
	ips := float64((r.Step-p.s0)*p.batch) / time.Since(p.t0).Seconds()
	if p.tty {
		p.bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f %.0f img/s", r.Epoch()+1-boolInt(r.Step%p.perEpoch == 0), r.Config.Epochs, p.lossEMA, ips))
		_ = p.bar.Set(r.Step)
		return
	}
	if r.Step%p.every == 0 {
		left := float64(r.TotalSteps()-r.Step) * float64(p.batch) / ips
		fmt.Fprintf(p.w, "step %d/%d loss %.4f %.0f img/s lr %.2e eta %s\n", r.Step, r.TotalSteps(), p.lossEMA, ips, r.LR(), (time.Duration(left) * time.Second).Round(time.Second))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *progress) epoch(m train.Metrics) {
	if p.tty {
		_ = p.bar.Clear()
	}
	val := ""
	if m.HasVal {
		val = fmt.Sprintf("val loss %.4f acc %.2f%% | ", m.ValLoss, 100*m.ValAcc)
	}
	fmt.Fprintf(p.w, "epoch %d: train loss %.4f acc %.2f%% | %stest loss %.4f acc %.2f%% | lr %.2e | %.0f img/s | %.1fs\n",
		m.Epoch, m.TrainLoss, 100*m.TrainAcc, val, m.TestLoss, 100*m.TestAcc, m.LR, m.ImagesPerS, m.Seconds)
}

func (p *progress) finish() {
	if p.tty {
		_ = p.bar.Finish()
	}
}
