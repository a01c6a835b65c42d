package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxLine is the longest line a Reader accepts.
const MaxLine = 16 << 20

// Reader reads the lines one worker wrote. A last line without its newline that does not parse
// is what a worker killed mid-write leaves: Next drops it and Truncated reports it. Any other
// line that does not parse is an error. Not safe for concurrent use.
type Reader struct {
	r         *bufio.Reader
	n         int // lines read
	truncated bool
	strs      map[string]string // the names and namespaces read, so that lines share them
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// Next returns the next line; io.EOF after the last.
func (r *Reader) Next() (Line, error) {
	for {
		b, err := r.readLine()
		if err != nil && !errors.Is(err, io.EOF) {
			return Line{}, err
		}
		whole := err == nil
		if len(bytes.TrimSpace(b)) == 0 {
			if !whole {
				return Line{}, io.EOF
			}
			continue // an empty line
		}
		r.n++
		var l Line
		if perr := json.Unmarshal(b, &l); perr != nil {
			if !whole {
				r.truncated = true
				return Line{}, io.EOF
			}
			return Line{}, fmt.Errorf("history: line %d: %w: %.200q", r.n, perr, b)
		}
		r.share(&l)
		return l, nil
	}
}

// share makes l's names and namespaces the strings of earlier lines that hold the same: a long
// history repeats a few of them millions of times.
func (r *Reader) share(l *Line) {
	if r.strs == nil {
		r.strs = map[string]string{}
	}
	intern := func(s string) string {
		if c, ok := r.strs[s]; ok {
			return c
		}
		if len(r.strs) < maxShared {
			r.strs[s] = s
		}
		return s
	}
	l.Type = Type(intern(string(l.Type)))
	l.Worker = intern(l.Worker)
	l.F = intern(l.F)
	for i, ns := range l.NS {
		l.NS[i] = intern(ns)
	}
}

// maxShared bounds a Reader's table of shared strings.
const maxShared = 1024

// readLine returns the next line without its newline; io.EOF with the rest when the input ends
// without one.
func (r *Reader) readLine() ([]byte, error) {
	var out []byte
	for {
		b, err := r.r.ReadSlice('\n')
		out = append(out, b...)
		if len(out) > MaxLine {
			return nil, fmt.Errorf("history: line %d longer than %d bytes", r.n+1, MaxLine)
		}
		switch {
		case err == nil:
			return out[:len(out)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return out, err
		}
	}
}

// Truncated reports whether the input ended in a torn line that Next dropped.
func (r *Reader) Truncated() bool { return r.truncated }

// ReadAll reads every line of r; truncated reports a dropped torn last line.
func ReadAll(r io.Reader) (lines []Line, truncated bool, err error) {
	rd := NewReader(r)
	for {
		l, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return lines, rd.Truncated(), nil
		}
		if err != nil {
			return lines, rd.Truncated(), err
		}
		lines = append(lines, l)
	}
}
