package ingest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Spool copies a stream to a file that every pass reads, and removes it;
// a stream longer than the limit is ErrSpoolFull and leaves nothing
// behind; SpoolStdin takes one - only.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	text, err := os.ReadFile(article)
	if err != nil {
		t.Fatal(err)
	}
	in, remove, err := Spool(bytes.NewReader(text), StdinName, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open([]Input{in}, Options{})
	if err != nil || len(s.Points()) != 4 || !strings.HasPrefix(s.Points()[0].Name, "stdin#1 ") {
		t.Fatalf("%v %v; want the article's four points, named stdin#N", err, s)
	}
	if err := remove(); err != nil {
		t.Error(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	_, _, err = Spool(bytes.NewReader(text), StdinName, dir, 100)
	if !errors.Is(err, ErrSpoolFull) || !strings.Contains(err.Error(), "save it to a file") {
		t.Errorf("over the limit: %v; want ErrSpoolFull", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left behind over the limit: %v", left)
	}
	if _, err := SpoolStdin([]Input{{Name: "-"}, {Name: "a"}, {Name: "-"}}, bytes.NewReader(nil)); !errors.Is(err, ErrStdinTwice) {
		t.Errorf("- twice: %v; want ErrStdinTwice", err)
	}
}
