package totp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// KeyURI returns the otpauth:// URI that enrols secret in an authenticator
// app with the defaults (SHA1, 6 digits, 30 s):
//
//	otpauth://totp/{issuer}:{account}?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30
//
// issuer and account are percent-encoded byte by byte, everything except
// A-Z a-z 0-9 - . _ ~ and '@': a space becomes %20 (never '+') and a colon
// %3A, so the one literal ':' separates issuer from account. The secret is
// unpadded base32. An empty issuer leaves out both the label prefix and the
// issuer parameter.
func KeyURI(issuer, account string, secret []byte) string {
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	if issuer != "" {
		b.WriteString(escape(issuer))
		b.WriteByte(':')
	}
	b.WriteString(escape(account))
	b.WriteString("?secret=")
	b.WriteString(Encode(secret))
	if issuer != "" {
		b.WriteString("&issuer=")
		b.WriteString(escape(issuer))
	}
	fmt.Fprintf(&b, "&algorithm=%v&digits=%d&period=%d", SHA1, DefaultDigits, int(DefaultPeriod.Seconds()))
	return b.String()
}

// escape percent-encodes s for both the label and a query value of the
// URI. It is stricter than url.PathEscape (which leaves ':' alone) and
// url.QueryEscape (which writes spaces as '+', which some apps show
// literally).
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '@' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String()
}

// QRCodePNG returns uri as a QR code PNG, black on white, with the standard
// four-module quiet zone around it, and medium (15%) error correction.
// Every module is the same whole number of pixels, so the image is the
// largest multiple of the module count that fits in size × size pixels
// (at least one pixel per module, so a tiny size gives a larger image).
// size must be 1 to 4096. It fails if uri is too long for a QR code.
func QRCodePNG(uri string, size int) ([]byte, error) {
	if size < 1 || size > 4096 {
		return nil, fmt.Errorf("totp: QR code size %d outside 1 to 4096", size)
	}
	q, err := qrcode.New(uri, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("totp: QR code: %w", err)
	}
	// Drawn here rather than by go-qrcode, whose fixed-size images scale
	// modules unevenly.
	modules := q.Bitmap() // includes the quiet zone
	if len(modules) == 0 {
		return nil, errors.New("totp: QR code: empty symbol")
	}
	scale := max(1, size/len(modules))
	img := image.NewPaletted(image.Rect(0, 0, len(modules)*scale, len(modules)*scale),
		color.Palette{color.White, color.Black})
	for y, row := range modules {
		for x, dark := range row {
			if dark {
				for dy := range scale {
					for dx := range scale {
						img.SetColorIndex(x*scale+dx, y*scale+dy, 1)
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp: QR code: %w", err)
	}
	return buf.Bytes(), nil
}

// DataURI returns png as a data: URI ("data:image/png;base64,…") for an
// <img> src or a JSON field.
func DataURI(png []byte) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
}
