// Package uncoded finds refusals that would reach a client without a code: errors a
// contract package builds with fmt.Errorf or errors.New instead of ledgerutil.Refuse,
// and identifier rules compiled outside ledgerutil/identifiers.go.
package uncoded

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const ledgerutilPath = "github.com/fabricml/fabricml/chaincode/ledgerutil"

// Finding is one uncoded error (or stray pattern) in a source file.
type Finding struct {
	Pos      token.Position
	Function string
	Call     string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s calls %s", filepath.Base(f.Pos.Filename), f.Pos.Line, f.Function, f.Call)
}

// Scan parses the non-test Go files of dir and reports every fmt.Errorf or errors.New
// call that is not the first argument of ledgerutil.Context (which codes it INTERNAL),
// and, outside package ledgerutil, every regexp compilation.
func Scan(dir string) ([]Finding, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var out []Finding
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, scanFile(fset, f)...)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		return a.Filename < b.Filename || (a.Filename == b.Filename && a.Line < b.Line)
	})
	return out, nil
}

func scanFile(fset *token.FileSet, f *ast.File) []Finding {
	names := importNames(f)
	inLedgerutil := f.Name.Name == "ledgerutil"
	wrapped := map[*ast.CallExpr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if ok && len(call.Args) > 0 && isContext(call, names, inLedgerutil) {
			if inner, ok := call.Args[0].(*ast.CallExpr); ok {
				wrapped[inner] = true
			}
		}
		return true
	})
	var out []Finding
	for _, decl := range f.Decls {
		where := "a package-level declaration"
		if fn, ok := decl.(*ast.FuncDecl); ok {
			where = funcName(fn)
		}
		ast.Inspect(decl, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || wrapped[call] {
				return true
			}
			pkg, fun := selector(call, names)
			uncoded := (pkg == "fmt" && fun == "Errorf") || (pkg == "errors" && fun == "New")
			stray := pkg == "regexp" && strings.Contains(fun, "Compile") && !inLedgerutil
			if uncoded || stray {
				out = append(out, Finding{Pos: fset.Position(call.Pos()), Function: where, Call: pkg + "." + fun})
			}
			return true
		})
	}
	return out
}

// importNames maps each local import name to its path.
func importNames(f *ast.File) map[string]string {
	names := map[string]string{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		local := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			local = imp.Name.Name
		}
		names[local] = path
	}
	return names
}

// selector returns the import path and name of a pkg.Func call, or "" for other calls.
func selector(call *ast.CallExpr, names map[string]string) (string, string) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", ""
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return "", ""
	}
	if path, ok := names[id.Name]; ok {
		return path, sel.Sel.Name
	}
	return id.Name, sel.Sel.Name // not imported (the file would not build): judge by the name
}

func isContext(call *ast.CallExpr, names map[string]string, inLedgerutil bool) bool {
	if id, ok := call.Fun.(*ast.Ident); ok {
		return inLedgerutil && id.Name == "Context"
	}
	pkg, fun := selector(call, names)
	return pkg == ledgerutilPath && fun == "Context"
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
