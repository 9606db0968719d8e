package report

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/capturectl/capturectl/internal/testenv"
)

// The HTML report renders in headless Chromium and shows the path picture:
// the PortOutput and VnicRx boxes and the red mark of the copies reverse
// teaming dropped.
func TestHTMLScreenshot(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "chromium not installed")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := HTML(&b, articleResult(t), Meta{Title: "trace of testvm2"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1100,1000", "--screenshot="+shot, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	var red, portOutput, vnicRx int
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			switch {
			case r > 170 && g < 70 && bl < 70:
				red++
			case r == 238 && g == 238 && bl == 255:
				portOutput++
			case r == 238 && g == 255 && bl == 238:
				vnicRx++
			}
		}
	}
	if red < 30 || portOutput < 1000 || vnicRx < 1000 {
		t.Errorf("screenshot: %d red, %d PortOutput-box and %d VnicRx-box pixels; want the path picture with the dropped copies marked", red, portOutput, vnicRx)
	}
}
