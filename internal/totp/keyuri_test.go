package totp

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

func TestKeyURI(t *testing.T) {
	t.Parallel()
	const s = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	tests := []struct {
		issuer, account string
		want            string
	}{
		{"Twostep", "alice@example.com",
			"otpauth://totp/Twostep:alice@example.com?secret=" + s + "&issuer=Twostep&algorithm=SHA1&digits=6&period=30"},
		{"ACME Co", "john doe",
			"otpauth://totp/ACME%20Co:john%20doe?secret=" + s + "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"},
		{"a:b", "c:d",
			"otpauth://totp/a%3Ab:c%3Ad?secret=" + s + "&issuer=a%3Ab&algorithm=SHA1&digits=6&period=30"},
		{"Ünï", "用户",
			"otpauth://totp/%C3%9Cn%C3%AF:%E7%94%A8%E6%88%B7?secret=" + s + "&issuer=%C3%9Cn%C3%AF&algorithm=SHA1&digits=6&period=30"},
		{"x&y=z?#/+%", "a+b",
			"otpauth://totp/x%26y%3Dz%3F%23%2F%2B%25:a%2Bb?secret=" + s + "&issuer=x%26y%3Dz%3F%23%2F%2B%25&algorithm=SHA1&digits=6&period=30"},
		{"", "bob",
			"otpauth://totp/bob?secret=" + s + "&algorithm=SHA1&digits=6&period=30"},
	}
	for _, tt := range tests {
		got := KeyURI(tt.issuer, tt.account, seed20)
		if got != tt.want {
			t.Errorf("KeyURI(%q, %q) = %q, want %q", tt.issuer, tt.account, got, tt.want)
		}
		if strings.ContainsAny(got, "+ ") {
			t.Errorf("KeyURI(%q, %q) = %q, holds a '+' or a space", tt.issuer, tt.account, got)
		}
		// A standard parser gets the parts back.
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("url.Parse(KeyURI(%q, %q)) = %v", tt.issuer, tt.account, err)
		}
		label := strings.TrimPrefix(u.Path, "/")
		wantLabel := tt.account
		if tt.issuer != "" {
			wantLabel = tt.issuer + ":" + tt.account
			if i := strings.Index(u.EscapedPath(), ":"); i != strings.LastIndex(u.EscapedPath(), ":") {
				t.Errorf("KeyURI(%q, %q) label %q has more than one literal ':'", tt.issuer, tt.account, u.EscapedPath())
			}
		}
		q := u.Query()
		if u.Scheme != "otpauth" || u.Host != "totp" || label != wantLabel || q.Get("issuer") != tt.issuer {
			t.Errorf("parsed KeyURI(%q, %q) = %s %s %q issuer %q, want otpauth totp %q issuer %q",
				tt.issuer, tt.account, u.Scheme, u.Host, label, q.Get("issuer"), wantLabel, tt.issuer)
		}
		if strings.Contains(q.Get("secret"), "=") {
			t.Errorf("secret of KeyURI(%q, %q) = %q, want no padding", tt.issuer, tt.account, q.Get("secret"))
		}
		if secret, err := Decode(q.Get("secret")); err != nil || !bytes.Equal(secret, seed20) {
			t.Errorf("secret of KeyURI(%q, %q) = %x, %v, want %x", tt.issuer, tt.account, secret, err, seed20)
		}
	}
}

func TestQRCodePNG(t *testing.T) {
	t.Parallel()
	uris := []string{
		KeyURI("Twostep", "alice@example.com", seed20),
		KeyURI("ACME Co: Staging", "someone.with.a.long.address@subdomain.example.org", seed64),
	}
	for _, uri := range uris {
		for _, size := range []int{1, 64, 256, 300} {
			b, err := QRCodePNG(uri, size)
			if err != nil {
				t.Fatalf("QRCodePNG(%q, %d) = %v, want nil", uri, size, err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("png.Decode(QRCodePNG(%q, %d)) = %v", uri, size, err)
			}
			w, h := img.Bounds().Dx(), img.Bounds().Dy()
			if w != h {
				t.Errorf("QRCodePNG(%d) is %dx%d, want square", size, w, h)
			}
			if size >= 256 && (w > size || w <= size/2) {
				t.Errorf("QRCodePNG(%d) is %d px wide, want at most %d and more than half", size, w, size)
			}
			// The quiet zone: four modules of at least one pixel each.
			if x, y, ok := allWhiteBorder(img, 4); !ok {
				t.Errorf("QRCodePNG(%d): pixel (%d,%d) in the quiet zone is not white", size, x, y)
			}
			if got := decodeQR(t, img); got != uri {
				t.Errorf("decode(QRCodePNG(%q, %d)) = %q, want the URI", uri, size, got)
			}
		}
	}
}

func TestQRCodePNGErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uri  string
		size int
	}{
		{"otpauth://totp/x", 0},
		{"otpauth://totp/x", -5},
		{"otpauth://totp/x", 4097},
		{strings.Repeat("x", 5000), 256}, // beyond QR capacity
	}
	for _, tt := range tests {
		if _, err := QRCodePNG(tt.uri, tt.size); err == nil {
			t.Errorf("QRCodePNG(%.20q, %d) = nil error, want error", tt.uri, tt.size)
		}
	}
}

func TestDataURI(t *testing.T) {
	t.Parallel()
	b, err := QRCodePNG("otpauth://totp/x?secret=AAAA", 128)
	if err != nil {
		t.Fatal(err)
	}
	got := DataURI(b)
	payload, ok := strings.CutPrefix(got, "data:image/png;base64,")
	if !ok {
		t.Fatalf("DataURI() = %.40q, want prefix data:image/png;base64,", got)
	}
	dec, err := base64.StdEncoding.DecodeString(payload)
	if err != nil || !bytes.Equal(dec, b) {
		t.Errorf("DataURI() payload decodes to %d bytes, %v, want the %d PNG bytes", len(dec), err, len(b))
	}
	if got := DataURI([]byte{1, 2, 3}); got != "data:image/png;base64,AQID" {
		t.Errorf("DataURI(01 02 03) = %q, want %q", got, "data:image/png;base64,AQID")
	}
}

func allWhiteBorder(img image.Image, n int) (x, y int, ok bool) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if x >= b.Min.X+n && x < b.Max.X-n && y >= b.Min.Y+n && y < b.Max.Y-n {
				continue
			}
			if color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y != 0xff {
				return x, y, false
			}
		}
	}
	return 0, 0, true
}

// decodeQR reads img with gozxing, an independent decoder.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("gozxing.NewBinaryBitmapFromImage() = %v", err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("gozxing decode = %v", err)
	}
	return res.GetText()
}
