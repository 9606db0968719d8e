package lab

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/internal/testenv"
)

// Real clients accept the lab's output: OpenSSH's ssh runs pktcap-uw on an
// emulated host with -o - and tshark decodes the pcap (and pcapng) stream.
func TestOpenSSHIntoTshark(t *testing.T) {
	for _, tool := range []string{"ssh", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s not installed", tool)
		}
	}
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	l := startLab(t, "../configs/lab-article.yaml", Options{AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	info, _ := l.Host("esx02")
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(info.KnownHostsLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(info.Addr, ":")
	stop := keepPinging(t, l.Net, "testvm1", "testvm2", 20*time.Millisecond)
	defer stop()
	for _, ng := range []string{"", " --ng"} {
		remote := "pktcap-uw --uplink vmnic2 --proto 0x01 -c 4 -o -" + ng
		script := fmt.Sprintf("ssh -p %s -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes "+
			"-o IdentitiesOnly=yes -o LogLevel=ERROR root@127.0.0.1 %q | "+
			"tshark -r - -T fields -e frame.len -e ip.src -e ip.dst -e icmp.type", port, keyFile, kh, remote)
		cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstderr: %s", script, err, errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 4 {
			t.Fatalf("%q: tshark decoded %d packets; want 4:\n%s\nstderr: %s", remote, len(lines), out.String(), errb.String())
		}
		for _, line := range lines {
			if line != "98\t192.168.100.11\t192.168.100.12\t8" {
				t.Errorf("%q: tshark line %q; want an echo request 192.168.100.11 -> .12 of 98 bytes", remote, line)
			}
		}
		if !strings.Contains(errb.String(), "Dumped 4 packet to file -, dropped 0 packets.") {
			t.Errorf("%q: the summary did not reach the ssh client's stderr:\n%s", remote, errb.String())
		}
	}
}
