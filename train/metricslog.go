package train

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"strings"

	"github.com/pkg/errors"
)

// MetricsLog is a metrics file: one JSON line of Metrics per epoch.
type MetricsLog struct {
	f    *os.File
	path string
}

// OpenMetricsLog opens the metrics file of a new run (truncated) or, with
// resume, of a run resumed at step: the lines of later steps are dropped
// (a run killed after writing an epoch's line but before saving its
// checkpoint writes that epoch again), and new lines are appended.
func OpenMetricsLog(path string, resume bool, step int) (*MetricsLog, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resume {
		if err := trimMetrics(path, step); err != nil {
			return nil, err
		}
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, errors.Wrap(err, "train: cannot open the metrics file")
	}
	return &MetricsLog{f: f, path: path}, nil
}

// Write appends one epoch's line.
func (l *MetricsLog) Write(m Metrics) error {
	b, _ := json.Marshal(m) // numbers only: cannot fail
	_, err := l.f.Write(append(b, '\n'))
	return errors.Wrapf(err, "train: writing metrics %s", l.path)
}

// Close closes the file.
func (l *MetricsLog) Close() error { return l.f.Close() }

// trimMetrics keeps the lines of a metrics file whose "step" is at most
// step (a missing file is fine), rewriting the file only if that drops any.
func trimMetrics(path string, step int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errors.Wrap(err, "train: cannot read the metrics file")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var keep []string
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for _, line := range lines {
		var m struct{ Step *int }
		if json.Unmarshal([]byte(line), &m) == nil && m.Step != nil && *m.Step > step {
			continue
		}
		if line != "" {
			keep = append(keep, line)
		}
	}
	if len(keep) == len(lines) {
		return nil
	}
	out := strings.Join(keep, "\n")
	if out != "" {
		out += "\n"
	}
	tmp := path + ".tmp"
	err = os.WriteFile(tmp, []byte(out), 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return errors.Wrap(err, "train: cannot rewrite the metrics file")
	}
	return nil
}
