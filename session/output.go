package session

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// PointFiles returns an Options.PointOutput that writes each point's pcap
// to dir, named after the point with "/" as "_" ("esx01_vmnic2_rx.pcap").
// Existing files are not overwritten.
func PointFiles(dir string) func(Point) (io.WriteCloser, error) {
	return func(p Point) (io.WriteCloser, error) {
		name := filepath.Join(dir, PointFileName(p))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, fmt.Errorf("session: pcap file of %s: %w", p.Name(), err)
		}
		return f, nil
	}
}

// PointFileName is the file name PointFiles uses for p.
func PointFileName(p Point) string { return strings.ReplaceAll(p.Name(), "/", "_") + ".pcap" }
