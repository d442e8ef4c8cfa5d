package fleet

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	commonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// unframe checks the gRPC frame around a message and returns the message.
func unframe(t *testing.T, body []byte) []byte {
	t.Helper()
	if len(body) < grpcFrameHeader || body[0] != 0 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-grpcFrameHeader {
		t.Fatalf("not one uncompressed gRPC frame: % x", body)
	}
	return body[grpcFrameHeader:]
}

// frame wraps a marshalled message as the service sends it.
func frame(t testing.TB, m proto.Message) []byte {
	raw, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(raw))), raw...)
}

// The generated types of go-control-plane read what GRPCRequestBody wrote.
func TestGRPCRequestBodyIsARateLimitRequest(t *testing.T) {
	long := string(make([]byte, 300)) // a length that takes a two-byte varint
	for _, tc := range []struct {
		key        string
		cost       int64
		wantAddend uint32
	}{
		{key: "al\"ice\n<x>", cost: 1}, {key: "bob", cost: 0}, // one hit: the service's default, not sent
		{key: "carol", cost: 5, wantAddend: 5},
		{key: long, cost: 1_000_000_000, wantAddend: 1_000_000_000},
		{key: "dave", cost: math.MaxInt64, wantAddend: math.MaxUint32},
	} {
		body := GRPCRequestBody([]byte("kept"), "portcullis", KeyEntry, tc.key, "api", tc.cost)
		if string(body[:4]) != "kept" {
			t.Fatalf("dst's bytes were overwritten: %q", body[:4])
		}
		var req rlsv3.RateLimitRequest
		if err := proto.Unmarshal(unframe(t, body[4:]), &req); err != nil {
			t.Fatalf("cost %d: %v", tc.cost, err)
		}
		want := &rlsv3.RateLimitRequest{
			Domain: "portcullis",
			Descriptors: []*commonv3.RateLimitDescriptor{{Entries: []*commonv3.RateLimitDescriptor_Entry{
				{Key: KeyEntry, Value: tc.key}, {Key: RouteEntry, Value: "api"},
			}}},
			HitsAddend: tc.wantAddend,
		}
		if !proto.Equal(&req, want) {
			t.Errorf("cost %d: decoded %v\nwant %v", tc.cost, &req, want)
		}
		// Byte for byte what protobuf writes (both order fields by number).
		if raw, _ := proto.Marshal(want); string(raw) != string(unframe(t, body[4:])) {
			t.Errorf("cost %d: bytes differ from proto.Marshal's:\n% x\n% x", tc.cost, body[9:], raw)
		}
	}
}

func TestGRPCRequestBodyAllocatesOnlyItsOutput(t *testing.T) {
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { _ = GRPCRequestBody(buf[:0], "portcullis", KeyEntry, "alice", "api", 3) }); n != 0 {
		t.Errorf("into a large enough slice: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = GRPCRequestBody(nil, "portcullis", KeyEntry, "alice", "api", 3) }); n != 1 {
		t.Errorf("into nil: %v allocations, want 1 (the output)", n)
	}
}

func status(code rlsv3.RateLimitResponse_Code, limit *rlsv3.RateLimitResponse_RateLimit, remaining uint32, reset *durationpb.Duration) *rlsv3.RateLimitResponse_DescriptorStatus {
	return &rlsv3.RateLimitResponse_DescriptorStatus{Code: code, CurrentLimit: limit, LimitRemaining: remaining, DurationUntilReset: reset}
}

var perMinute = &rlsv3.RateLimitResponse_RateLimit{Name: "per-key-route", RequestsPerUnit: 3, Unit: rlsv3.RateLimitResponse_RateLimit_MINUTE}

func TestParseGRPCAnswer(t *testing.T) {
	ok, over := rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OVER_LIMIT
	tests := []struct {
		name string
		resp *rlsv3.RateLimitResponse
		want Answer
	}{
		{"first of three", &rlsv3.RateLimitResponse{OverallCode: ok, Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{status(ok, perMinute, 2, durationpb.New(14*time.Second))}},
			Answer{Limited: true, Limit: 3, Window: time.Minute, Remaining: 2, Reset: 14 * time.Second}},
		{"over", &rlsv3.RateLimitResponse{OverallCode: over, Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{status(over, perMinute, 0, durationpb.New(14*time.Second))}},
			Answer{Over: true, Limited: true, Limit: 3, Window: time.Minute, Reset: 14 * time.Second}},
		{"no rule matched", &rlsv3.RateLimitResponse{OverallCode: ok, Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{status(ok, nil, 0, nil)}}, Answer{}},
		{"no status", &rlsv3.RateLimitResponse{OverallCode: ok}, Answer{}},
		{"fractional reset, a week, unknown fields", &rlsv3.RateLimitResponse{OverallCode: ok, RawBody: []byte("skipped"),
			Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{
				status(ok, &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: 10, Unit: rlsv3.RateLimitResponse_RateLimit_WEEK}, 9, durationpb.New(250*time.Millisecond)),
				status(over, perMinute, 0, nil), // another descriptor's: not ours
			}},
			Answer{Limited: true, Limit: 10, Window: 7 * 24 * time.Hour, Remaining: 9, Reset: 250 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := GRPC.ParseAnswer(Reply{Status: 200, GRPCStatus: "0", Body: frame(t, tt.resp)})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseGRPCAnswerRefuses(t *testing.T) {
	ok, over := rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OVER_LIMIT
	good := frame(t, &rlsv3.RateLimitResponse{OverallCode: ok, Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{status(ok, perMinute, 2, durationpb.New(14*time.Second))}})
	resp := func(st ...*rlsv3.RateLimitResponse_DescriptorStatus) []byte {
		code := ok
		if len(st) > 0 {
			code = st[0].Code
		}
		return frame(t, &rlsv3.RateLimitResponse{OverallCode: code, Statuses: st})
	}
	raw := func(msg ...byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	}
	tests := []struct {
		name       string
		status     int
		grpcStatus string
		body       []byte
	}{
		{"unavailable, trailers only", 200, "14", nil},
		{"grpc-status missing", 200, "", good},
		{"HTTP 503", 503, "0", good},
		{"no answer", 0, "", nil},
		{"empty body", 200, "0", nil},
		{"frame longer than the body", 200, "0", good[:len(good)-1]},
		{"two frames", 200, "0", append(append([]byte{}, good...), good...)},
		{"compressed", 200, "0", append([]byte{1}, good[1:]...)},
		{"overall UNKNOWN", 200, "0", frame(t, &rlsv3.RateLimitResponse{})},
		{"overall code out of range", 200, "0", raw(0x08, 0x07)},
		{"status code differs", 200, "0", frame(t, &rlsv3.RateLimitResponse{OverallCode: ok, Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{status(over, nil, 0, nil)}})},
		{"over without status", 200, "0", frame(t, &rlsv3.RateLimitResponse{OverallCode: over})},
		{"over without limit", 200, "0", resp(status(over, nil, 0, nil))},
		{"unknown unit", 200, "0", resp(status(ok, &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: 3, Unit: 99}, 0, nil))},
		{"unit UNKNOWN", 200, "0", resp(status(ok, &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: 3}, 0, nil))},
		{"reset past the window", 200, "0", resp(status(ok, perMinute, 0, durationpb.New(61*time.Second)))},
		{"negative reset", 200, "0", resp(status(ok, perMinute, 0, &durationpb.Duration{Seconds: -1}))},
		{"negative nanos", 200, "0", resp(status(ok, perMinute, 0, &durationpb.Duration{Nanos: -1}))},
		{"nanos of a second or more", 200, "0", resp(status(ok, perMinute, 0, &durationpb.Duration{Nanos: 1e9}))},
		{"limit above uint32", 200, "0", raw(0x08, 0x01, 0x12, 0x0a, 0x08, 0x01, 0x12, 0x06, 0x08, 0x80, 0x80, 0x80, 0x80, 0x10)},
		{"overall code as a string", 200, "0", raw(0x0a, 0x01, 0x01)},
		{"truncated varint", 200, "0", raw(0x08, 0x81)},
		{"truncated field", 200, "0", raw(0x12, 0x05, 0x08)},
		{"field number 0", 200, "0", raw(0x00, 0x01)},
		{"group", 200, "0", raw(0x0b, 0x0c)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := GRPC.ParseAnswer(Reply{Status: tt.status, GRPCStatus: tt.grpcStatus, Body: tt.body})
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("ParseGRPCAnswer = %+v, %v; want ErrBadAnswer", a, err)
			}
		})
	}
}

// FuzzParseGRPCAnswer: the reader never panics, accepts only consistent
// answers, agrees with the generated types on what it accepts, and reads
// back every answer proto.Marshal writes from the fuzzed fields.
func FuzzParseGRPCAnswer(f *testing.F) {
	f.Add([]byte{}, uint8(1), uint8(1), uint32(3), uint8(2), uint32(2), int64(14), int32(0))
	f.Add([]byte{0x08, 0x02}, uint8(2), uint8(2), uint32(3), uint8(7), uint32(0), int64(1), int32(5e8))
	f.Fuzz(func(t *testing.T, body []byte, overall, code uint8, limit uint32, unitNum uint8, remaining uint32, secs int64, nanos int32) {
		checkAccepted(t, body)
		resp := &rlsv3.RateLimitResponse{
			OverallCode: rlsv3.RateLimitResponse_Code(overall % 4),
			Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{status(rlsv3.RateLimitResponse_Code(code%4),
				&rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: limit, Unit: rlsv3.RateLimitResponse_RateLimit_Unit(unitNum % 9)},
				remaining, &durationpb.Duration{Seconds: secs, Nanos: nanos})},
		}
		framed := frame(t, resp)
		a, err := ParseGRPCAnswer(200, "0", framed)
		st := resp.Statuses[0]
		window := unit(st.CurrentLimit.Unit).window()
		reset := st.DurationUntilReset.AsDuration()
		valid := (resp.OverallCode == rlsv3.RateLimitResponse_OK || resp.OverallCode == rlsv3.RateLimitResponse_OVER_LIMIT) &&
			st.Code == resp.OverallCode && window > 0 && secs >= 0 && nanos >= 0 && reset <= window
		if valid != (err == nil) {
			t.Fatalf("%v: ParseGRPCAnswer = %+v, %v; valid %v", resp, a, err, valid)
		}
		want := Answer{Over: resp.OverallCode == rlsv3.RateLimitResponse_OVER_LIMIT, Limited: true, Limit: int64(limit), Window: window, Remaining: int64(remaining), Reset: reset}
		if valid && a != want {
			t.Fatalf("%v: got %+v, want %+v", resp, a, want)
		}
	})
}

// checkAccepted: if the reader accepts body as a message, the answer is
// consistent and is what the generated types read there.
func checkAccepted(t *testing.T, msg []byte) {
	framed := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	a, err := ParseGRPCAnswer(200, "0", framed)
	if err != nil {
		return
	}
	if a.Limit < 0 || a.Remaining < 0 || a.Reset < 0 || a.Reset > a.Window || (a.Limited && a.Window <= 0) || (a.Over && !a.Limited) {
		t.Fatalf("accepted an inconsistent answer %+v from % x", a, msg)
	}
	var resp rlsv3.RateLimitResponse
	if proto.Unmarshal(msg, &resp) != nil {
		return // e.g. a name that is not UTF-8: a field this reader skips
	}
	want := Answer{Over: resp.OverallCode == rlsv3.RateLimitResponse_OVER_LIMIT}
	if len(resp.Statuses) > 0 && resp.Statuses[0].CurrentLimit != nil {
		st := resp.Statuses[0]
		want.Limited, want.Limit, want.Remaining = true, int64(st.CurrentLimit.RequestsPerUnit), int64(st.LimitRemaining)
		want.Window, want.Reset = unit(st.CurrentLimit.Unit).window(), st.DurationUntilReset.AsDuration()
	}
	if a != want {
		t.Fatalf("% x: read %+v, the generated types %+v", msg, a, want)
	}
}

func TestParseGRPCAnswerDoesNotAllocate(t *testing.T) {
	ok := rlsv3.RateLimitResponse_OK
	body := frame(t, &rlsv3.RateLimitResponse{OverallCode: ok, Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{status(ok, perMinute, 2, durationpb.New(14*time.Second))}})
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseGRPCAnswer(200, "0", body) }); n != 0 {
		t.Errorf("reading an answer: %v allocations, want 0", n)
	}
}
