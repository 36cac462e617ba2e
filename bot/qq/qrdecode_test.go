package qq

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"

	"rsc.io/qr/coding"
)

// renderQR draws a code the way a server would: scale pixels per module,
// margin modules of quiet zone, optionally paletted with a transparent
// background.
func renderQR(t testing.TB, v coding.Version, l coding.Level, m coding.Mask, enc coding.Encoding, scale, margin int, transparent bool) []byte {
	t.Helper()
	p, err := coding.NewPlan(v, l, m)
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.Encode(enc)
	if err != nil {
		t.Fatal(err)
	}
	side := (code.Size + 2*margin) * scale
	var img image.Image
	if transparent {
		pal := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.Transparent, color.Black})
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				if code.Black(x/scale-margin, y/scale-margin) {
					pal.SetColorIndex(x, y, 1)
				}
			}
		}
		img = pal
	} else {
		g := image.NewGray(image.Rect(0, 0, side, side))
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				c := uint8(0xF0) // not pure white, as JPEG-ish servers do
				if code.Black(x/scale-margin, y/scale-margin) {
					c = 0x10
				}
				g.SetGray(x, y, color.Gray{c})
			}
		}
		img = g
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeQRPNG(t *testing.T) {
	const loginURL = "https://txz.qq.com/p?k=T7Dh*QW0qKmN5sVu2xBzRfcoD1L-abc&f=537065138"
	cases := []struct {
		name string
		enc  coding.Encoding
		want string
	}{
		{"url", coding.String(loginURL), loginURL},
		{"digits", coding.Num("0123456789012345"), "0123456789012345"},
		{"alnum", coding.Alpha("HTTPS://QQ.COM/ABC 1$%*+-./:"), "HTTPS://QQ.COM/ABC 1$%*+-./:"},
		{"utf8", coding.String("群哨 登录"), "群哨 登录"},
	}
	for _, tc := range cases {
		for v := coding.Version(1); v <= 12; v++ {
			if tc.enc.Bits(v) > v.DataBytes(coding.H)*8 {
				continue
			}
			for l := coding.L; l <= coding.H; l++ {
				for m := coding.Mask(0); m < 8; m++ {
					// Every level and mask on small and version-info
					// sizes; one combination per other version.
					if v != 1 && v != 7 && int(l)*8+int(m) != int(v)*5%32 {
						continue
					}
					scale, margin := 1+int(m)%4, int(l)*2
					name := fmt.Sprintf("%s/v%d/%s/mask%d/scale%d", tc.name, v, l, m, scale)
					data := renderQR(t, v, l, m, tc.enc, scale, margin, m%3 == 0)
					got, err := decodeQRPNG(data)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if got != tc.want {
						t.Fatalf("%s: got %q, want %q", name, got, tc.want)
					}
				}
			}
		}
	}
}

func TestDecodeQRLargeVersion(t *testing.T) {
	long := bytes.Repeat([]byte("https://txz.qq.com/p?k=0123456789&f=1 "), 10)
	for _, v := range []coding.Version{20, 27, 40} {
		data := renderQR(t, v, coding.M, 5, coding.String(long), 2, 4, false)
		got, err := decodeQRPNG(data)
		if err != nil || got != string(long) {
			t.Fatalf("v%d: %q, %v", v, got, err)
		}
	}
}

func TestDecodeQRRejectsDamageAndJunk(t *testing.T) {
	data := renderQR(t, 3, coding.L, 2, coding.String("https://txz.qq.com/p?k=abc"), 3, 2, false)
	img, _ := png.Decode(bytes.NewReader(data))
	g := img.(*image.Gray)
	// Flip a block of data modules (bottom right, away from fixed patterns):
	// without error correction the check bytes must catch it.
	b := g.Bounds()
	for y := b.Max.Y - 6*3 - 6; y < b.Max.Y-6; y++ {
		for x := b.Max.X - 6*3 - 6; x < b.Max.X-6; x++ {
			g.SetGray(x, y, color.Gray{255 - g.GrayAt(x, y).Y})
		}
	}
	if s, err := decodeQRImage(g); err == nil {
		t.Fatalf("damaged code decoded to %q", s)
	}
	for name, junk := range map[string][]byte{
		"empty":   nil,
		"not png": []byte("GIF89a"),
		"blank":   mustPNG(t, image.NewGray(image.Rect(0, 0, 50, 50)), 0xFF),
		"black":   mustPNG(t, image.NewGray(image.Rect(0, 0, 50, 50)), 0x00),
	} {
		if s, err := decodeQRPNG(junk); err == nil {
			t.Errorf("%s decoded to %q", name, s)
		}
	}
}

func mustPNG(t *testing.T, g *image.Gray, fill uint8) []byte {
	for i := range g.Pix {
		g.Pix[i] = fill
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
