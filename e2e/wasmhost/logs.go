package wasmhost

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Level is a proxy-wasm log level.
type Level uint32

// The proxy-wasm log levels.
const (
	Trace Level = iota
	Debug
	Info
	Warn
	Error
	Critical
)

func (l Level) String() string {
	switch l {
	case Trace:
		return "trace"
	case Debug:
		return "debug"
	case Info:
		return "info"
	case Warn:
		return "warn"
	case Error:
		return "error"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("level(%d)", uint32(l))
}

// Source says who wrote a log entry.
type Source string

// The log sources.
const (
	FromPlugin Source = "plugin" // proxy_log
	FromStdout Source = "stdout" // the module's WASI stdout
	FromStderr Source = "stderr" // the module's WASI stderr (Go panics print here)
	FromHost   Source = "host"   // the host itself: VM failures, upstream errors
)

// LogEntry is one captured log line.
type LogEntry struct {
	Time    time.Time
	Source  Source
	Level   Level
	VM      int // the VM's index, -1 for the host
	Message string
}

func (e LogEntry) String() string {
	return fmt.Sprintf("[%s][vm %d][%s] %s", e.Source, e.VM, e.Level, e.Message)
}

// logs keeps every line and copies it to an optional writer.
type logs struct {
	mu      sync.Mutex
	entries []LogEntry
	out     io.Writer
}

func (l *logs) add(src Source, level Level, vm int, msg string) {
	e := LogEntry{Time: time.Now(), Source: src, Level: level, VM: vm, Message: msg}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	if l.out != nil {
		fmt.Fprintln(l.out, e.String())
	}
}

func (l *logs) hostf(vm int, level Level, format string, args ...any) {
	l.add(FromHost, level, vm, fmt.Sprintf(format, args...))
}

func (l *logs) snapshot() []LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LogEntry(nil), l.entries...)
}

// Logs returns every captured entry so far, in order.
func (h *Host) Logs() []LogEntry { return h.logs.snapshot() }

// PluginLogs returns the plugin's proxy_log lines, one per line, each as
// "<level>: <message>".
func (h *Host) PluginLogs() string {
	var b strings.Builder
	for _, e := range h.logs.snapshot() {
		if e.Source == FromPlugin {
			fmt.Fprintf(&b, "%s: %s\n", e.Level, e.Message)
		}
	}
	return b.String()
}

// HostLogs returns every captured line (plugin, module output and host).
func (h *Host) HostLogs() string {
	var b strings.Builder
	for _, e := range h.logs.snapshot() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// lineWriter turns a module's WASI stdout or stderr into log entries.
type lineWriter struct {
	logs  *logs
	src   Source
	level Level
	vm    int
	mu    sync.Mutex
	buf   []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.logs.add(w.src, w.level, w.vm, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// flush logs a trailing partial line.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.logs.add(w.src, w.level, w.vm, string(w.buf))
		w.buf = nil
	}
}
