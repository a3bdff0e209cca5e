package auth_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestSecretsComparedInConstantTime guards the contract's rule that codes,
// password hashes and signatures are compared in constant time. Timing
// cannot be measured reliably in a test, so this reads the source of every
// function that compares a secret: each must call a constant-time compare
// (crypto/subtle or hmac.Equal) and none may use bytes.Equal, strings
// comparison helpers, or == / != on a string or []byte conversion.
func TestSecretsComparedInConstantTime(t *testing.T) {
	for _, c := range []struct{ file, recv, fn string }{
		{"../totp/totp.go", "", "Verify"},
		{"../password/password.go", "Hasher", "Verify"},
		{"sms.go", "Service", "smsMatch"},
		{"../sms/webhook/webhook.go", "", "Verify"},
		{"handoff.go", "", "pkceMatches"},
	} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, c.file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var body *ast.BlockStmt
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Name.Name != c.fn || recvName(fd) != c.recv {
				continue
			}
			body = fd.Body
		}
		if body == nil {
			t.Fatalf("%s: no function %s.%s", c.file, c.recv, c.fn)
		}
		constant := false
		ast.Inspect(body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				switch callName(n) {
				case "subtle.ConstantTimeCompare", "hmac.Equal":
					constant = true
				case "bytes.Equal", "bytes.Compare", "strings.Compare", "strings.EqualFold":
					t.Errorf("%s %s: %s compares a secret in variable time", c.file, c.fn, callName(n))
				}
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (isConversion(n.X) || isConversion(n.Y)) {
					t.Errorf("%s %s: %s on a string or []byte at %s", c.file, c.fn, n.Op, fset.Position(n.Pos()))
				}
			}
			return true
		})
		if !constant {
			t.Errorf("%s %s: no constant-time compare (subtle.ConstantTimeCompare or hmac.Equal)", c.file, c.fn)
		}
	}
}

func recvName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return ""
	}
	switch t := fd.Recv.List[0].Type.(type) {
	case *ast.StarExpr:
		if id, ok := t.X.(*ast.Ident); ok {
			return id.Name
		}
	case *ast.Ident:
		return t.Name
	}
	return ""
}

func callName(c *ast.CallExpr) string {
	if sel, ok := c.Fun.(*ast.SelectorExpr); ok {
		if id, ok := sel.X.(*ast.Ident); ok {
			return id.Name + "." + sel.Sel.Name
		}
	}
	return ""
}

// isConversion reports string(x) or []byte(x).
func isConversion(e ast.Expr) bool {
	c, ok := e.(*ast.CallExpr)
	if !ok || len(c.Args) != 1 {
		return false
	}
	switch f := c.Fun.(type) {
	case *ast.Ident:
		return f.Name == "string"
	case *ast.ArrayType:
		id, ok := f.Elt.(*ast.Ident)
		return ok && id.Name == "byte"
	}
	return false
}
