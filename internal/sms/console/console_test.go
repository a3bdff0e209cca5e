package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/sms"
)

func TestSend(t *testing.T) {
	var buf bytes.Buffer
	s := &Sender{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	body := sms.Text("", "twostep", "123456", "auth.example.com")
	if err := s.Send(t.Context(), sms.Message{To: "+14155552671", Body: body, Code: "123456", Purpose: "login"}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	delete(line, "time")
	want := map[string]any{
		"level": "INFO", "msg": "sms not sent: development console provider", "event": "sms_console",
		"to": "+1******2671", "channel": "sms", "purpose": "login", "message": body,
	}
	if diff := cmp.Diff(want, line); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
	if bytes.Contains(buf.Bytes(), []byte("4155552671")) {
		t.Errorf("log line shows the full number: %s", buf.Bytes())
	}
}

func TestSendInvalidNumber(t *testing.T) {
	var buf bytes.Buffer
	s := &Sender{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	if err := s.Send(t.Context(), sms.Message{To: "4155552671", Body: "x"}); !errors.Is(err, sms.ErrInvalidNumber) {
		t.Errorf("Send = %v, want ErrInvalidNumber", err)
	}
	if buf.Len() != 0 {
		t.Errorf("logged %s for a refused number", buf.Bytes())
	}
}
