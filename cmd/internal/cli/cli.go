// Package cli holds what the commands share: running main with an exit
// status, and flag parsing that reports a mistake as one line (exit status
// 2) and prints the flag list only for -h.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Main runs run on the command line and exits with its status; an error is
// printed as one line, "name: " and its message.
func Main(name string, run func(args []string, stdout, stderr io.Writer) (int, error)) {
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
	}
	os.Exit(code)
}

// FlagSet is a flag.FlagSet that keeps quiet about mistakes (Parse returns
// them) and prints its usage text and flag list for -h.
type FlagSet struct {
	*flag.FlagSet
	usage  string
	stderr io.Writer
}

// NewFlagSet returns a flag set whose -h prints usage, then the flags.
func NewFlagSet(name, usage string, stderr io.Writer) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &FlagSet{FlagSet: fs, usage: usage, stderr: stderr}
}

// Parse parses args. For -h it prints the usage and returns flag.ErrHelp;
// a mistake comes back as a FlagError.
func (fs *FlagSet) Parse(args []string) error {
	err := fs.FlagSet.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(fs.stderr, fs.usage)
		fs.SetOutput(fs.stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		return err
	}
	if err != nil {
		return FlagError{err}
	}
	return nil
}

// Set returns the names of the flags given on the command line.
func (fs *FlagSet) Set() map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// FlagError is a mistake on the command line (unknown flag, bad value).
type FlagError struct{ error }

func (e FlagError) Unwrap() error { return e.error }

// Status turns the error of parsing the command line into an exit status:
// 0 for -h, 2 for a mistake (its message says how to see the flags).
func Status(err error) (int, error) {
	var bad FlagError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0, nil
	case errors.As(err, &bad):
		return 2, fmt.Errorf("%v (run with -h for the list of flags)", bad.error)
	}
	return 2, err
}
