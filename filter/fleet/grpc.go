package fleet

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
)

// GRPCPath is the :path of the service's gRPC method ShouldRateLimit.
const GRPCPath = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"

// Protobuf field numbers, as api/envoy/service/ratelimit/v3/rls.proto and
// api/envoy/extensions/common/ratelimit/v3/ratelimit.proto number them.
const (
	// RateLimitRequest
	requestDomain      = 1 // string
	requestDescriptors = 2 // repeated RateLimitDescriptor
	requestHitsAddend  = 3 // uint32
	// RateLimitDescriptor
	descriptorEntries = 1 // repeated Entry
	// RateLimitDescriptor.Entry
	entryKey   = 1 // string
	entryValue = 2 // string
	// RateLimitResponse
	responseOverallCode = 1 // Code
	responseStatuses    = 2 // repeated DescriptorStatus
	// RateLimitResponse.DescriptorStatus
	statusCode               = 1 // Code
	statusCurrentLimit       = 2 // RateLimit
	statusLimitRemaining     = 3 // uint32
	statusDurationUntilReset = 4 // google.protobuf.Duration
	// RateLimitResponse.RateLimit
	limitRequestsPerUnit = 1 // uint32
	limitUnit            = 2 // Unit
	// google.protobuf.Duration
	durationSeconds = 1 // int64
	durationNanos   = 2 // int32
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// grpcFrameHeader is the length of a gRPC message's prefix: a compression
// flag byte and the big-endian length of the message.
const grpcFrameHeader = 5

// GRPCRequestBody appends to dst the gRPC frame of the RateLimitRequest that
// RequestBody writes as JSON: the same descriptor, and hitsAddend when it
// is above 1 (it is a uint32: a larger one is sent as its maximum, which
// exceeds every limit the service can hold).
func GRPCRequestBody(dst []byte, domain, entry, key, route string, hitsAddend int64) []byte {
	entries := bytesFieldLen(len(entry)) + bytesFieldLen(len(key))
	routeEntries := bytesFieldLen(len(RouteEntry)) + bytesFieldLen(len(route))
	descriptor := bytesFieldLen(entries) + bytesFieldLen(routeEntries)
	message := bytesFieldLen(len(domain)) + bytesFieldLen(descriptor)
	addend := uint64(min(hitsAddend, math.MaxUint32))
	if hitsAddend > 1 {
		message += 1 + varintLen(addend)
	}
	dst = slices.Grow(dst, grpcFrameHeader+message)
	dst = append(dst, 0) // not compressed
	dst = binary.BigEndian.AppendUint32(dst, uint32(message))
	dst = appendBytesField(dst, requestDomain, domain)
	dst = appendTag(dst, requestDescriptors, wireBytes)
	dst = binary.AppendUvarint(dst, uint64(descriptor))
	dst = appendTag(dst, descriptorEntries, wireBytes)
	dst = binary.AppendUvarint(dst, uint64(entries))
	dst = appendBytesField(dst, entryKey, entry)
	dst = appendBytesField(dst, entryValue, key)
	dst = appendTag(dst, descriptorEntries, wireBytes)
	dst = binary.AppendUvarint(dst, uint64(routeEntries))
	dst = appendBytesField(dst, entryKey, RouteEntry)
	dst = appendBytesField(dst, entryValue, route)
	if hitsAddend > 1 {
		dst = appendTag(dst, requestHitsAddend, wireVarint)
		dst = binary.AppendUvarint(dst, addend)
	}
	return dst
}

// Every field number written here is below 16, so each tag is one byte.
func appendTag(dst []byte, field, wire byte) []byte { return append(dst, field<<3|wire) }

func appendBytesField(dst []byte, field byte, s string) []byte {
	dst = appendTag(dst, field, wireBytes)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// bytesFieldLen is the encoded length of a length-delimited field of n bytes.
func bytesFieldLen(n int) int { return 1 + varintLen(uint64(n)) + n }

func varintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// ParseGRPCAnswer reads the service's answer to a gRPC call: HTTP status,
// grpc-status (from the trailers, or the headers of a trailers-only answer)
// and body, one gRPC frame holding a RateLimitResponse. Anything but HTTP
// 200, grpc-status 0 and one well-formed, uncompressed message is not
// understood. Unknown fields are skipped, as protobuf readers do.
func ParseGRPCAnswer(status int, grpcStatus string, body []byte) (Answer, error) {
	if status != 200 || grpcStatus != "0" {
		return Answer{}, badAnswer("status " + strconv.Itoa(status) + " with grpc-status " + strconv.Quote(grpcStatus))
	}
	if len(body) < grpcFrameHeader {
		return Answer{}, badAnswer("no gRPC message (" + strconv.Itoa(len(body)) + " bytes)")
	}
	if body[0] != 0 {
		return Answer{}, badAnswer("compressed or unknown gRPC frame flag " + strconv.Itoa(int(body[0])))
	}
	if n := binary.BigEndian.Uint32(body[1:grpcFrameHeader]); uint64(n) != uint64(len(body)-grpcFrameHeader) {
		return Answer{}, badAnswer("gRPC frame of " + strconv.FormatUint(uint64(n), 10) + " bytes in a body of " + strconv.Itoa(len(body)))
	}
	var r reported
	if err := decodeResponse(&r, body[grpcFrameHeader:]); err != nil {
		return Answer{}, badAnswer("RateLimitResponse: " + err.Error())
	}
	if r.overall != codeOK && r.overall != codeOverLimit {
		return Answer{}, badAnswer("overall_code " + r.overall.String())
	}
	return r.answer()
}

var (
	errTruncated = errors.New("truncated")
	errWireType  = errors.New("unsupported wire type")
	errRange     = errors.New("value out of range")
)

// field is one decoded protobuf field: its number, wire type, and either
// its varint value or its length-delimited payload.
type field struct {
	num     uint64
	wire    byte
	varint  uint64
	payload []byte
}

// fields calls fn for each field of the message m, stopping at the first
// error (fn's or m's). Fixed-width fields are skipped: no field read here
// is one.
func fields(m []byte, fn func(field) error) error {
	for len(m) > 0 {
		tag, n := binary.Uvarint(m)
		if n <= 0 {
			return errTruncated
		}
		m = m[n:]
		f := field{num: tag >> 3, wire: byte(tag & 7)}
		if f.num == 0 || f.num > 1<<29-1 {
			return errors.New("field number " + strconv.FormatUint(f.num, 10))
		}
		switch f.wire {
		case wireVarint:
			if f.varint, n = binary.Uvarint(m); n <= 0 {
				return errTruncated
			}
			m = m[n:]
		case wireBytes:
			size, n := binary.Uvarint(m)
			if n <= 0 || size > uint64(len(m)-n) {
				return errTruncated
			}
			f.payload, m = m[n:n+int(size)], m[n+int(size):]
		case wireFixed64, wireFixed32:
			width := 8
			if f.wire == wireFixed32 {
				width = 4
			}
			if len(m) < width {
				return errTruncated
			}
			m = m[width:]
			continue
		default: // groups, long deprecated, and invalid types
			return errWireType
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// want checks that f, a field the reader knows, has the wire type its
// declaration gives it.
func (f field) want(wire byte) error {
	if f.wire != wire {
		return errors.New("field " + strconv.FormatUint(f.num, 10) + " has wire type " + strconv.Itoa(int(f.wire)))
	}
	return nil
}

// uint32 is f's value as a uint32 field; a larger varint is refused rather
// than truncated.
func (f field) uint32() (int64, error) {
	if err := f.want(wireVarint); err != nil {
		return 0, err
	}
	if f.varint > math.MaxUint32 {
		return 0, errRange
	}
	return int64(f.varint), nil
}

// decodeResponse reads a RateLimitResponse into r: the overall code and
// the first descriptor's status.
func decodeResponse(r *reported, m []byte) error {
	return fields(m, func(f field) error {
		switch f.num {
		case responseOverallCode:
			if err := f.want(wireVarint); err != nil {
				return err
			}
			r.overall = code(f.varint)
		case responseStatuses:
			if err := f.want(wireBytes); err != nil || r.hasStatus {
				return err // a later status is another descriptor's
			}
			r.hasStatus = true
			return decodeStatus(r, f.payload)
		}
		return nil
	})
}

func decodeStatus(r *reported, m []byte) error {
	return fields(m, func(f field) error {
		var err error
		switch f.num {
		case statusCode:
			err = f.want(wireVarint)
			r.code = code(f.varint)
		case statusCurrentLimit:
			if err = f.want(wireBytes); err == nil {
				r.hasLimit = true
				err = decodeLimit(r, f.payload)
			}
		case statusLimitRemaining:
			r.remaining, err = f.uint32()
		case statusDurationUntilReset:
			if err = f.want(wireBytes); err == nil {
				err = decodeDuration(&r.reset, f.payload)
			}
		}
		return err
	})
}

func decodeLimit(r *reported, m []byte) error {
	return fields(m, func(f field) error {
		var err error
		switch f.num {
		case limitRequestsPerUnit:
			r.limit, err = f.uint32()
		case limitUnit:
			err = f.want(wireVarint)
			r.unit = unit(f.varint)
		}
		return err
	})
}

// maxReset bounds a duration_until_reset: the longest window is a year.
const maxReset = 366 * 24 * time.Hour

// decodeDuration reads a google.protobuf.Duration into d, which holds what
// earlier occurrences of the field set (protobuf merges them). Negative
// values, nanos out of range and durations past maxReset are refused.
func decodeDuration(d *time.Duration, m []byte) error {
	secs, nanos := int64(*d/time.Second), int64(*d%time.Second)
	err := fields(m, func(f field) error {
		if f.num != durationSeconds && f.num != durationNanos {
			return nil
		}
		if err := f.want(wireVarint); err != nil {
			return err
		}
		// A negative value's varint is above either bound.
		if f.num == durationSeconds && f.varint <= uint64(maxReset/time.Second) {
			secs = int64(f.varint)
		} else if f.num == durationNanos && f.varint < uint64(time.Second) {
			nanos = int64(f.varint)
		} else {
			return errRange
		}
		return nil
	})
	if err != nil {
		return err
	}
	if *d = time.Duration(secs)*time.Second + time.Duration(nanos); *d > maxReset {
		return errRange
	}
	return nil
}

// Protocol is how the plugin calls the service: gRPC ShouldRateLimit (the
// default: smaller messages, one HTTP/2 connection) or the /json endpoint.
type Protocol uint8

const (
	GRPC Protocol = iota
	JSON
)

// RequestBody appends the call's body in protocol p (see RequestBody).
func (p Protocol) RequestBody(dst []byte, domain, entry, key, route string, hitsAddend int64) []byte {
	if p == JSON {
		return RequestBody(dst, domain, entry, key, route, hitsAddend)
	}
	return GRPCRequestBody(dst, domain, entry, key, route, hitsAddend)
}

// Reply is what came back from a call: Status 0 when nothing did (timeout,
// reset, no cluster). GRPCStatus is read only for gRPC.
type Reply struct {
	Status     int
	GRPCStatus string
	Body       []byte
}

// ParseAnswer reads r as an answer in protocol p.
func (p Protocol) ParseAnswer(r Reply) (Answer, error) {
	if p == JSON {
		return ParseAnswer(r.Status, r.Body)
	}
	return ParseGRPCAnswer(r.Status, r.GRPCStatus, r.Body)
}
