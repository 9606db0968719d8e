package esxi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedTranscripts adds every transcript of the given areas (without its
// provenance line) and a few hand-made edge cases to the fuzz corpus.
func seedTranscripts(f *testing.F, areas ...string) {
	for _, area := range areas {
		files, err := filepath.Glob(filepath.Join(transcripts, area, "*.txt"))
		if err != nil || len(files) == 0 {
			f.Fatalf("no transcripts in %s: %v", area, err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			_, rest, _ := strings.Cut(string(b), "\n")
			f.Add(rest)
		}
	}
	for _, s := range []string{"", "\n", "\r\n", "-", "x\n-\n", "a: b\n", "   : \n", "h\n   k:\n", "PortNum\n", "World ID\n--------\n\t\n"} {
		f.Add(s)
	}
}

// checkParseErr fails unless err is nil or a *ParseError with a sane line.
func checkParseErr(t *testing.T, in string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	if pe.Line < 0 || pe.Line > strings.Count(in, "\n")+1 {
		t.Fatalf("error %v names line %d of a %d-line input", err, pe.Line, strings.Count(in, "\n")+1)
	}
}

func FuzzParseVMList(f *testing.F) {
	seedTranscripts(f, "esxcli")
	f.Fuzz(func(t *testing.T, in string) {
		vms, err := ParseVMList(strings.NewReader(in))
		checkParseErr(t, in, err)
		for _, vm := range vms {
			if vm.NumPorts < 0 {
				t.Fatalf("negative port count in %+v", vm)
			}
		}
	})
}

func FuzzParseVMPortList(f *testing.F) {
	seedTranscripts(f, "esxcli")
	f.Fuzz(func(t *testing.T, in string) {
		ports, err := ParseVMPortList(strings.NewReader(in))
		checkParseErr(t, in, err)
		for _, p := range ports {
			if p.TeamUplinkVoid && p.TeamUplink != "" {
				t.Fatalf("void team uplink with a name: %+v", p)
			}
		}
	})
}

func FuzzParseVSwitchList(f *testing.F) {
	seedTranscripts(f, "esxcli")
	f.Fuzz(func(t *testing.T, in string) {
		vs, err := ParseVSwitchList(strings.NewReader(in))
		checkParseErr(t, in, err)
		for _, v := range vs {
			if v.Name == "" {
				t.Fatalf("vSwitch without a name: %+v", v)
			}
		}
	})
}

func FuzzParseFailoverPolicy(f *testing.F) {
	seedTranscripts(f, "esxcli")
	f.Fuzz(func(t *testing.T, in string) {
		_, err := ParseFailoverPolicy(strings.NewReader(in))
		checkParseErr(t, in, err)
	})
}

func FuzzParsePortgroupList(f *testing.F) {
	seedTranscripts(f, "esxcli")
	f.Fuzz(func(t *testing.T, in string) {
		_, err := ParsePortgroupList(strings.NewReader(in))
		checkParseErr(t, in, err)
	})
}

func FuzzParseNICList(f *testing.F) {
	seedTranscripts(f, "esxcli")
	f.Fuzz(func(t *testing.T, in string) {
		_, err := ParseNICList(strings.NewReader(in))
		checkParseErr(t, in, err)
	})
}

func FuzzParseVMProcessList(f *testing.F) {
	seedTranscripts(f, "esxcli")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := ParseVMProcessList(strings.NewReader(in))
		checkParseErr(t, in, err)
		for _, p := range ps {
			if p.UUID != "" {
				_, _ = CanonicalUUID(p.UUID) // must not panic
			}
		}
	})
}

func FuzzParseNetStatsPorts(f *testing.F) {
	seedTranscripts(f, "net-stats")
	f.Fuzz(func(t *testing.T, in string) {
		_, err := ParseNetStatsPorts(strings.NewReader(in))
		checkParseErr(t, in, err)
	})
}
