package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// inspectCases are shapes PM2's prettylist meets, and the corners of Node's rules.
var inspectCases = []string{
	`[]`, `{}`, `[{}]`, `[[]]`, `null`, `"x"`, `0`, `-0`, `1.5`, `1e21`, `1e-7`, `0.000001`, `123456789012`,
	`{"a":1,"b":"two","c":true,"d":null}`,
	`{"name":"api","pm2_env":{"status":"online","exec_mode":"fork_mode","instances":1,"node_args":[],"args":["--port","80"],"env":{"NODE_APP_INSTANCE":0,"PATH":"/usr/bin:/bin"}},"monit":{"memory":42000000,"cpu":1.5}}`,
	`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,100,1000,10000]`,
	`["a","bb","ccc","dddd","eeeee","ffffff","g","hh","iii"]`,
	`{"it's":"it's","both":"'\"","all":"'\"` + "`" + `","esc":"a\\b\nc\td\u001b[0m\u007f"}`,
	`{"long":"` + strings.Repeat("x", 120) + `","lines":"` + strings.Repeat("first line\\n", 9) + `end"}`,
	`{"key-with-dash":1,"0":2,"_ok":3,"$no":4,"": 5,"日本":"日本語"}`,
	`{"deep":{"a":{"b":{"c":{"d":{"e":[1,2,{"f":"g"}]}}}}}}`,
	`[` + strings.Repeat(`1,`, 120) + `1]`,
	`[` + strings.Repeat(`"x",`, 120) + `"x"]`,
}

// randomJSON builds a document of the kinds of values jlist holds.
func randomJSON(r *rand.Rand, depth int) any {
	words := []string{"online", "fork_mode", "/usr/bin/node", "", "it's", "a b", "x\ny", "--port", "日本", "API_TOKEN", strings.Repeat("long ", 20)}
	switch k := r.IntN(10); {
	case depth > 4 || k < 3:
		return words[r.IntN(len(words))]
	case k < 5:
		return []any{0, 1, -3, 1.25, 1700000000000, 42e6}[r.IntN(6)]
	case k < 6:
		return []any{true, false, nil}[r.IntN(3)]
	case k < 8:
		n := r.IntN(12)
		arr := make([]any, n)
		for i := range arr {
			arr[i] = randomJSON(r, depth+1)
		}
		return arr
	default:
		n := r.IntN(8)
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			key, _ := json.Marshal([]string{"name", "pm_id", "env", "NODE_APP_INSTANCE", "key-x", "a1", "_x", "Z"}[r.IntN(8)] + fmt.Sprint(i))
			val, _ := json.Marshal(randomJSON(r, depth+1))
			b.Write(key)
			b.WriteString(":")
			b.Write(val)
		}
		b.WriteString("}")
		return json.RawMessage(b.String())
	}
}

// Every case, and 300 random documents, print exactly as node's util.inspect prints them.
func TestInspectMatchesNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: cannot compare with util.inspect")
	}
	docs := append([]string(nil), inspectCases...)
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		b, err := json.Marshal(randomJSON(r, 0))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	var in bytes.Buffer
	for _, d := range docs {
		b, _ := json.Marshal(d)
		in.Write(b)
		in.WriteByte('\n')
	}
	cmd := exec.Command(node, "-e", `
const util = require('util');
const lines = require('fs').readFileSync(0, 'utf8').split('\n').filter(Boolean);
for (const l of lines) process.stdout.write(JSON.stringify(util.inspect(JSON.parse(JSON.parse(l)), false, null, false)) + '\n');
`)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(want) != len(docs) {
		t.Fatalf("node printed %d documents, want %d", len(want), len(docs))
	}
	fails := 0
	for i, d := range docs {
		var w string
		if err := json.Unmarshal([]byte(want[i]), &w); err != nil {
			t.Fatal(err)
		}
		got, err := inspectJSON([]byte(d))
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if got != w {
			t.Errorf("document %d %s:\ngot:\n%s\nnode:\n%s", i, d, got, w)
			if fails++; fails > 5 {
				t.FailNow()
			}
		}
	}
}

// PM2's own prettylist of an app, from PM2's own jlist of it, byte for byte.
func TestInspectMatchesPM2Capture(t *testing.T) {
	dir := filepath.Join("..", "..", "test", "testdata", "pm2-7.0.4")
	jl, err := os.ReadFile(filepath.Join(dir, "jlist.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "prettylist.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := inspectJSON(jl)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d differs:\ngot  %q\nwant %q", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%d lines, PM2's has %d", len(gl), len(wl))
	}
}
