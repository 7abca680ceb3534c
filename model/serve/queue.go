package serve

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"

	"github.com/vitgo/vit/model"
)

// job is one request's images on their way through the queue.
type job struct {
	ctx   context.Context
	x     [][]float32 // each image converted and normalised, C×H×W
	preds []model.Prediction
	left  atomic.Int32  // images not yet classified
	done  chan struct{} // closed when left reaches 0

	mu  sync.Mutex
	err error // the first failure of any of its images
}

func newJob(ctx context.Context, x [][]float32) *job {
	j := &job{ctx: ctx, x: x, preds: make([]model.Prediction, len(x)), done: make(chan struct{})}
	j.left.Store(int32(len(x)))
	return j
}

// finish records image i's prediction or failure.
func (j *job) finish(i int, p model.Prediction, err error) {
	if err != nil {
		j.mu.Lock()
		if j.err == nil {
			j.err = err
		}
		j.mu.Unlock()
	} else {
		j.preds[i] = p
	}
	if j.left.Add(-1) == 0 {
		close(j.done)
	}
}

// failure is the job's first error, once done is closed.
func (j *job) failure() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// item is image i of a job.
type item struct {
	j *job
	i int
}

var (
	errQueueFull = errors.New("the queue is full")
	errClosed    = errors.New("the server is shutting down")
)

// queue holds the images waiting for a forward pass, first in first out,
// at most size of them. A request's images enter together or not at all.
type queue struct {
	mu     sync.Mutex
	items  []item
	size   int
	closed bool
	signal chan struct{} // closed (and replaced) when images arrive or the queue closes
}

func newQueue(size int) *queue { return &queue{size: size, signal: make(chan struct{})} }

// push queues every image of j, or none: errQueueFull when they do not
// fit, errClosed after close.
func (q *queue) push(j *job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errClosed
	}
	if len(q.items)+len(j.x) > q.size {
		return errQueueFull
	}
	for i := range j.x {
		q.items = append(q.items, item{j, i})
	}
	q.wake()
	return nil
}

func (q *queue) wake() {
	close(q.signal)
	q.signal = make(chan struct{})
}

// depth is the number of images waiting.
func (q *queue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// close refuses new jobs; gather still hands out what is queued.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.wake()
	}
}

// takeLocked moves images from the front of the queue to batch until it
// holds max; with oneJob, only images of the job batch started with.
// Images of a request whose client has gone are dropped.
func (q *queue) takeLocked(batch []item, max int, oneJob bool) []item {
	n := 0
	for n < len(q.items) && len(batch) < max {
		it := q.items[n]
		if oneJob && len(batch) > 0 && it.j != batch[0].j {
			break
		}
		n++
		if err := it.j.ctx.Err(); err != nil {
			it.j.finish(it.i, model.Prediction{}, err)
			continue
		}
		batch = append(batch, it)
	}
	clear(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) == 0 {
		q.items = q.items[:0:0] // let the backing array go
	}
	return batch
}

// poke wakes gather's waiters without adding images (a forward pass
// ended).
func (q *queue) poke() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wake()
}

// gather waits for images and returns the next batch of at most max.
// While another forward pass is busy(), it keeps gathering until the batch
// is full or that pass ends (poke): the cores are taken anyway, and a
// fuller batch costs less per image. Otherwise it returns at once, unless
// more is expecting() (requests read and being decoded): then it waits up
// to wait for them. A lone request at an idle server therefore never
// waits. With oneJob a batch holds one request's images only, taken at once
// (batching off). It returns nil once the queue is closed and empty.
func (q *queue) gather(batch []item, max int, wait time.Duration, oneJob bool, busy, expecting func() bool) []item {
	batch = batch[:0]
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		batch = q.takeLocked(batch, max, oneJob)
		full := len(batch) == max || (oneJob && len(batch) > 0)
		if full || (q.closed && len(q.items) == 0) {
			q.mu.Unlock()
			if len(batch) == 0 {
				return nil
			}
			return batch
		}
		sig := q.signal
		q.mu.Unlock()
		if len(batch) == 0 || busy() {
			<-sig
			continue
		}
		if wait <= 0 || !expecting() {
			return batch
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		}
		select {
		case <-sig:
		case <-timer.C:
			q.mu.Lock()
			batch = q.takeLocked(batch, max, oneJob)
			q.mu.Unlock()
			return batch
		}
	}
}
