package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// The README's exit-code table is the code's, row for row.
func TestREADMEExitCodes(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Exit codes\n")
	if !ok {
		t.Fatal("README.md has no '## Exit codes' section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var rows [][2]string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) == 2 {
			if _, err := strconv.Atoi(cells[0]); err == nil {
				rows = append(rows, [2]string{cells[0], cells[1]})
			}
		}
	}
	if len(rows) != len(exitCodeTable) {
		t.Errorf("README lists %d exit codes, the code %d", len(rows), len(exitCodeTable))
	}
	for i, c := range exitCodeTable {
		want := [2]string{strconv.Itoa(c.code), c.meaning}
		if i >= len(rows) || rows[i] != want {
			t.Errorf("README row %d: want | %s | %s |", i, want[0], want[1])
		}
	}
}
