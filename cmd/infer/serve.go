package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/serve"
)

// serveOptions are the flags of -serve.
type serveOptions struct {
	addr                                   string
	batching                               bool
	maxWait                                time.Duration
	queue, maxImages, maxRequests          int
	maxBodyMiB                             float64
	maxPixels                              int64
	readTimeout, writeTimeout, idleTimeout time.Duration
	shutdownTimeout                        time.Duration
	logFormat                              string
}

// check refuses -serve settings that cannot work.
func (s *serveOptions) check() error {
	if s.queue < 1 || s.maxImages < 1 || s.maxRequests < 1 || s.maxBodyMiB <= 0 || s.maxPixels < 1 {
		return fmt.Errorf("-queue %d, -max-images %d, -max-requests %d, -max-body %v, -max-pixels %d: expected each at least 1",
			s.queue, s.maxImages, s.maxRequests, s.maxBodyMiB, s.maxPixels)
	}
	if s.maxImages > s.queue {
		return fmt.Errorf("-max-images %d is more than -queue %d: such a request could never run", s.maxImages, s.queue)
	}
	if s.maxWait < 0 || s.readTimeout <= 0 || s.writeTimeout <= 0 || s.idleTimeout <= 0 || s.shutdownTimeout <= 0 {
		return fmt.Errorf("-max-wait %v must not be negative; -read-timeout %v, -write-timeout %v, -idle-timeout %v, -shutdown-timeout %v must be positive",
			s.maxWait, s.readTimeout, s.writeTimeout, s.idleTimeout, s.shutdownTimeout)
	}
	if s.logFormat != "text" && s.logFormat != "json" {
		return fmt.Errorf("-log %q, expected text or json", s.logFormat)
	}
	return nil
}

// runServer serves the classifier until SIGINT or SIGTERM, then shuts down
// gracefully: requests already accepted are answered, new ones refused.
func runServer(o *options, stderr io.Writer) error {
	opts, err := o.classifierOptions()
	if err != nil {
		return err
	}
	// Every class may be asked for (?topk=); batches smaller than -batch
	// run on graphs of their own size.
	opts = append(opts, model.WithTopK(1<<30), model.WithExactBatches())
	c, err := model.LoadClassifier(o.model, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, n := range c.Notes() {
		fmt.Fprintln(stderr, "infer: note:", n)
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if o.serve.logFormat == "json" {
		h = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(h)
	so := o.serve
	s, err := serve.New(c, serve.Options{
		MaxBatch: o.batch, MaxWait: so.maxWait, NoBatching: !so.batching, QueueSize: so.queue,
		MaxImages: so.maxImages, MaxBodyBytes: int64(so.maxBodyMiB * (1 << 20)), MaxPixels: so.maxPixels,
		MaxRequests: so.maxRequests, TopK: o.topK, ReadTimeout: so.readTimeout, WriteTimeout: so.writeTimeout,
		IdleTimeout: so.idleTimeout, ShutdownTimeout: so.shutdownTimeout, Logger: log,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := c.Config()
	return s.ListenAndServe(ctx, so.addr, func(a net.Addr) {
		log.Info("serving", "url", "http://"+a.String(), "model", o.model, "image_size", cfg.ImageSize, "classes", cfg.NumClasses,
			"max_batch", o.batch, "batching", so.batching, "workers", c.Workers())
	})
}
