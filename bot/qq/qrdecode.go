package qq

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"strings"

	"rsc.io/qr/coding"
)

// MiraiGo's QR login hands over the code only as a PNG (TLV 0x17 of
// wtlogin.trans_emp); the URL inside it, which an operator needs to show
// or print the code elsewhere, is not exposed. decodeQRPNG reads it back.
//
// It is a decoder for clean, machine-generated codes, not for photos: the
// symbol must be axis-aligned on a light background with square modules.
// It uses rsc.io/qr/coding's layout plans (the encoder qrterminal is built
// on) to know which module carries which bit, so the only QR knowledge here
// is sampling, the format-information match and the segment syntax. There
// is no Reed-Solomon error correction; instead the check bytes are
// recomputed and must match, so a misread never yields a wrong URL.

// maxQRPixels bounds the decoded image (Tencent's code is a few hundred
// pixels wide); a PNG header can claim any size.
const maxQRPixels = 4 << 20

var errNoQR = errors.New("no QR code found")

func decodeQRPNG(data []byte) (string, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("qr png: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxQRPixels {
		return "", fmt.Errorf("qr png: %dx%d image is too large", cfg.Width, cfg.Height)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("qr png: %w", err)
	}
	return decodeQRImage(img)
}

func decodeQRImage(img image.Image) (string, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 || w*h > maxQRPixels {
		return "", errNoQR
	}
	dark := make([]bool, w*h)
	minX, minY, maxX, maxY := w, h, -1, -1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			// Transparent pixels count as background: a PNG with an
			// alpha channel shows them as the page behind.
			lum := (299*r + 587*g + 114*bl) / 1000
			if a >= 0x8000 && lum < 0x8000 {
				dark[y*w+x] = true
				minX, minY = min(minX, x), min(minY, y)
				maxX, maxY = max(maxX, x), max(maxY, y)
			}
		}
	}
	if maxX < 0 {
		return "", errNoQR
	}
	isDark := func(x, y int) bool { return x >= 0 && y >= 0 && x < w && y < h && dark[y*w+x] }
	// The top-left finder pattern starts the symbol; its top edge is a
	// run of 7 dark modules.
	run := 0
	for x := minX; x <= maxX && isDark(x, minY); x++ {
		run++
	}
	mod := float64(run) / 7
	width, height := float64(maxX-minX+1), float64(maxY-minY+1)
	if mod < 1 || math.Abs(width-height) > mod {
		return "", errNoQR
	}
	n := int(math.Round(width / mod))
	if n < 21 || n > 177 || (n-17)%4 != 0 {
		return "", fmt.Errorf("%w: symbol is %d modules wide", errNoQR, n)
	}
	version := coding.Version((n - 17) / 4)
	sx, sy := width/float64(n), height/float64(n)
	grid := make([][]bool, n)
	for y := range grid {
		grid[y] = make([]bool, n)
		for x := range grid[y] {
			grid[y][x] = isDark(minX+int((float64(x)+0.5)*sx), minY+int((float64(y)+0.5)*sy))
		}
	}
	plan, err := matchFormat(version, grid)
	if err != nil {
		return "", err
	}
	data, err := readCodewords(plan, grid)
	if err != nil {
		return "", err
	}
	return parseSegments(data, version)
}

// matchFormat reads the format information (error-correction level and
// mask, 15 bits stored twice) and picks the code word closest to it, which
// tolerates a few misread modules as the format code's BCH distance
// allows. The plan for that format must then agree with the symbol's
// fixed patterns.
func matchFormat(v coding.Version, grid [][]bool) (*coding.Plan, error) {
	n := len(grid)
	bestL, bestM, bestMiss := coding.L, coding.Mask(0), math.MaxInt
	for l := coding.L; l <= coding.H; l++ {
		for m := coding.Mask(0); m < 8; m++ {
			fb := formatBits(l, m)
			miss := 0
			for i := 0; i < 15; i++ {
				want := fb>>i&1 == 1
				for _, at := range formatPositions(i, n) {
					if grid[at[0]][at[1]] != want {
						miss++
					}
				}
			}
			if miss < bestMiss {
				bestL, bestM, bestMiss = l, m, miss
			}
		}
	}
	if bestMiss > 6 {
		return nil, fmt.Errorf("%w: no format matches", errNoQR)
	}
	p, err := coding.NewPlan(v, bestL, bestM)
	if err != nil || len(p.Pixel) != n {
		return nil, fmt.Errorf("%w: no plan for version %d", errNoQR, v)
	}
	miss, fixed := 0, 0
	for y, row := range p.Pixel {
		for x, px := range row {
			switch px.Role() {
			case coding.Position, coding.Timing, coding.Alignment:
				fixed++
				if grid[y][x] != (px&coding.Black != 0) {
					miss++
				}
			}
		}
	}
	if miss*10 >= fixed {
		return nil, fmt.Errorf("%w: finder and timing patterns do not match", errNoQR)
	}
	return p, nil
}

// formatBits is the 15-bit format word as it appears in the symbol (BCH
// code, masked with 0x5412), computed as rsc.io/qr/coding does.
func formatBits(l coding.Level, m coding.Mask) uint32 {
	fb := uint32(l^1)<<13 | uint32(m)<<10
	rem := fb
	for i := 14; i >= 10; i-- {
		if rem&(1<<uint(i)) != 0 {
			rem ^= 0x537 << uint(i-10)
		}
	}
	return (fb | rem) ^ 0x5412
}

// formatPositions returns the two (y, x) places of format bit i.
func formatPositions(i, n int) [2][2]int {
	var a, b [2]int
	switch {
	case i < 6:
		a = [2]int{i, 8}
	case i < 8:
		a = [2]int{i + 1, 8}
	case i < 9:
		a = [2]int{8, 7}
	default:
		a = [2]int{8, 14 - i}
	}
	if i < 8 {
		b = [2]int{8, n - 1 - i}
	} else {
		b = [2]int{n - 1 - (14 - i), 8}
	}
	return [2][2]int{a, b}
}

// readCodewords reads the data and check bytes in block order (the plan's
// pixel offsets already undo the interleaving) and verifies the check
// bytes.
func readCodewords(p *coding.Plan, grid [][]bool) (data []byte, err error) {
	total := p.DataBytes + p.CheckBytes
	buf := make([]byte, total)
	for y, row := range p.Pixel {
		for x, px := range row {
			if r := px.Role(); r != coding.Data && r != coding.Check {
				continue
			}
			o := px.Offset()
			if o/8 >= uint(total) {
				return nil, fmt.Errorf("%w: layout out of range", errNoQR)
			}
			if grid[y][x] != (px&coding.Black != 0) {
				buf[o/8] |= 1 << (7 - o%8)
			}
		}
	}
	defer func() {
		// coding panics on internal inconsistencies; a bad image must
		// not take the runner down.
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("%w: check bytes: %v", errNoQR, r)
		}
	}()
	var bits coding.Bits
	bits.Append(buf[:p.DataBytes])
	bits.AddCheckBytes(p.Version, p.Level)
	if !bytes.Equal(bits.Bytes(), buf) {
		return nil, fmt.Errorf("%w: check bytes do not match (damaged or not a clean code)", errNoQR)
	}
	return buf[:p.DataBytes], nil
}

type bitReader struct {
	data []byte
	pos  int
}

func (r *bitReader) left() int { return len(r.data)*8 - r.pos }

func (r *bitReader) read(n int) (int, bool) {
	if n > r.left() {
		return 0, false
	}
	v := 0
	for range n {
		v = v<<1 | int(r.data[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v, true
}

const qrAlnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// parseSegments decodes numeric, alphanumeric and byte segments (and skips
// ECI headers); kanji mode is not used by Tencent's login URLs.
func parseSegments(data []byte, v coding.Version) (string, error) {
	class := 0
	switch {
	case v >= 27:
		class = 2
	case v >= 10:
		class = 1
	}
	r := &bitReader{data: data}
	var out strings.Builder
	short := fmt.Errorf("%w: truncated segment", errNoQR)
	for r.left() >= 4 {
		mode, _ := r.read(4)
		switch mode {
		case 0:
			return out.String(), nil
		case 1: // numeric
			n, ok := r.read([3]int{10, 12, 14}[class])
			if !ok {
				return "", short
			}
			for n > 0 {
				k := min(n, 3)
				d, ok := r.read([4]int{0, 4, 7, 10}[k])
				if !ok {
					return "", short
				}
				fmt.Fprintf(&out, "%0*d", k, d)
				n -= k
			}
		case 2: // alphanumeric
			n, ok := r.read([3]int{9, 11, 13}[class])
			if !ok {
				return "", short
			}
			for ; n >= 2; n -= 2 {
				d, ok := r.read(11)
				if !ok || d/45 >= 45 {
					return "", short
				}
				out.WriteByte(qrAlnum[d/45])
				out.WriteByte(qrAlnum[d%45])
			}
			if n == 1 {
				d, ok := r.read(6)
				if !ok || d >= 45 {
					return "", short
				}
				out.WriteByte(qrAlnum[d])
			}
		case 4: // bytes
			n, ok := r.read([3]int{8, 16, 16}[class])
			if !ok {
				return "", short
			}
			for range n {
				d, ok := r.read(8)
				if !ok {
					return "", short
				}
				out.WriteByte(byte(d))
			}
		case 7: // ECI: the designator is 1, 2 or 3 bytes long
			first, ok := r.read(8)
			if !ok {
				return "", short
			}
			extra := 0
			switch {
			case first&0x80 == 0:
			case first&0xC0 == 0x80:
				extra = 8
			case first&0xE0 == 0xC0:
				extra = 16
			default:
				return "", fmt.Errorf("%w: bad ECI designator", errNoQR)
			}
			if _, ok := r.read(extra); !ok {
				return "", short
			}
		default:
			return "", fmt.Errorf("%w: unsupported segment mode %d", errNoQR, mode)
		}
	}
	return out.String(), nil
}
