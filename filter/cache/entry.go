package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strconv"
)

// Entry is one stored response: the value at an entry key (K1).
//
// Envelope layout, version 1 (integers little endian):
//
//	offset  size  field
//	0       3     magic "PCE"
//	3       1     version (1)
//	4       32    key: the SHA-256 the entry is stored under (K1)
//	36      2     status
//	38      8     stored-at: int64 Unix ms, when the gateway received the response
//	46      8     expires-at: int64 Unix ms, when it stops being fresh
//	54      4     initial age: uint32 seconds, the Age it arrived with
//	58      4     body length B: uint32
//	62      …     headers: uint16 count H, then H × (uint16 length, name; uint16 length, value)
//	        …     varied request fields: uint8 count V, then V × (uint8 length, name;
//	              uint8 present (0 or 1); uint16 length, value)
//	end−B   B     body
//
// Names are lower-case tokens, values hold no control characters but tab,
// H ≤ MaxHeaders, V ≤ MaxVary, everything before the body takes at most
// MaxHeadBytes, 100 ≤ status ≤ 599 and stored-at ≤ expires-at. A value that breaks any of this, is shorter or longer than its
// fields say, or has another magic or version does not decode.
type Entry struct {
	Key        [sha256.Size]byte
	Status     int
	StoredAt   int64 // Unix ms
	ExpiresAt  int64 // Unix ms
	InitialAge int64 // seconds
	Headers    [][2]string
	Vary       []VaryValue
	Body       []byte
}

// VaryValue is a request field the entry was stored for (RFC 9111 §4.1): a
// request matches only with the same value, or, when Present is false, also
// without the field.
type VaryValue struct {
	Name, Value string
	Present     bool
}

// Format limits.
const (
	MaxHeaders = 512 // header lines of a stored response
	MaxVary    = 16  // varied request fields of one path
	// MaxHeadBytes bounds an envelope without its body (Envoy's own limit
	// on response headers is 60 KiB by default): a stored value is at most
	// MaxHeadBytes + Config.MaxBodyBytes long.
	MaxHeadBytes    = 64 << 10
	maxNameBytes    = math.MaxUint8
	maxValueBytes   = math.MaxUint16
	entryMagic      = "PCE"
	entryVersion    = 1
	entryFixedSize  = 62
	bodyLengthField = 58
)

// appendHead appends everything but the body, with body length 0.
func (e *Entry) appendHead(b []byte) ([]byte, error) {
	switch {
	case e.Status < 100 || e.Status > 599:
		return b, corrupt("status " + strconv.Itoa(e.Status))
	case e.StoredAt < 0 || e.ExpiresAt < e.StoredAt:
		return b, corrupt("stored-at " + strconv.FormatInt(e.StoredAt, 10) + ", expires-at " + strconv.FormatInt(e.ExpiresAt, 10))
	case e.InitialAge < 0 || e.InitialAge > math.MaxUint32:
		return b, corrupt("initial age " + strconv.FormatInt(e.InitialAge, 10))
	case len(e.Headers) > MaxHeaders:
		return b, corrupt(strconv.Itoa(len(e.Headers)) + " headers")
	case len(e.Vary) > MaxVary:
		return b, corrupt(strconv.Itoa(len(e.Vary)) + " varied fields")
	case e.headSize() > MaxHeadBytes:
		return b, corrupt(strconv.Itoa(e.headSize()) + " bytes of header fields")
	}
	b = append(append(b, entryMagic...), entryVersion)
	b = append(b, e.Key[:]...)
	b = binary.LittleEndian.AppendUint16(b, uint16(e.Status))
	b = binary.LittleEndian.AppendUint64(b, uint64(e.StoredAt))
	b = binary.LittleEndian.AppendUint64(b, uint64(e.ExpiresAt))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.InitialAge))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(e.Headers)))
	for _, h := range e.Headers {
		if !storableHeader(h[0], h[1]) {
			return b, corrupt("header " + strconv.Quote(h[0]))
		}
		b = appendStr16(appendStr16(b, h[0]), h[1])
	}
	b = append(b, byte(len(e.Vary)))
	for _, v := range e.Vary {
		if !storableVary(v) {
			return b, corrupt("varied field " + strconv.Quote(v.Name))
		}
		present := byte(0)
		if v.Present {
			present = 1
		}
		b = appendStr16(append(appendStr8(b, v.Name), present), v.Value)
	}
	return b, nil
}

// setBodyLength writes the body length n (at most math.MaxUint32) into an
// envelope that starts at envelope[0].
func setBodyLength(envelope []byte, n int) {
	binary.LittleEndian.PutUint32(envelope[bodyLengthField:], uint32(n))
}

// headSize is the length of e's envelope without the body.
func (e *Entry) headSize() int {
	n := entryFixedSize + 2 + 1
	for _, h := range e.Headers {
		n += 4 + len(h[0]) + len(h[1])
	}
	for _, v := range e.Vary {
		n += 4 + len(v.Name) + len(v.Value)
	}
	return n
}

func storableHeader(name, value string) bool {
	return len(name) <= maxValueBytes && len(value) <= maxValueBytes && lowerToken(name) && safeValue(value)
}

func storableVary(v VaryValue) bool {
	return len(v.Name) <= maxNameBytes && len(v.Value) <= maxValueBytes && lowerToken(v.Name) &&
		safeValue(v.Value) && (v.Present || v.Value == "")
}

// DecodeEntry reads an envelope. The strings of the result share one copy of
// the header part of data; Body is a sub-slice of data itself (not copied).
// Garbage of any kind is an error wrapping ErrCorrupt, never a panic.
func DecodeEntry(data []byte) (Entry, error) {
	var e Entry
	if len(data) < entryFixedSize {
		return e, corrupt(strconv.Itoa(len(data)) + " bytes, shorter than the fixed fields")
	}
	if string(data[:3]) != entryMagic || data[3] != entryVersion {
		return e, corrupt("not a version " + strconv.Itoa(entryVersion) + " entry")
	}
	copy(e.Key[:], data[4:36])
	e.Status = int(binary.LittleEndian.Uint16(data[36:]))
	e.StoredAt = int64(binary.LittleEndian.Uint64(data[38:]))
	e.ExpiresAt = int64(binary.LittleEndian.Uint64(data[46:]))
	e.InitialAge = int64(binary.LittleEndian.Uint32(data[54:]))
	bodyLen := int64(binary.LittleEndian.Uint32(data[bodyLengthField:]))
	switch {
	case e.Status < 100 || e.Status > 599:
		return Entry{}, corrupt("status " + strconv.Itoa(e.Status))
	case e.StoredAt < 0 || e.ExpiresAt < e.StoredAt:
		return Entry{}, corrupt("stored-at " + strconv.FormatInt(e.StoredAt, 10) + ", expires-at " + strconv.FormatInt(e.ExpiresAt, 10))
	case bodyLen > int64(len(data)-entryFixedSize):
		return Entry{}, corrupt("body of " + strconv.FormatInt(bodyLen, 10) + " bytes in a value of " + strconv.Itoa(len(data)))
	case int64(len(data))-bodyLen > MaxHeadBytes:
		return Entry{}, corrupt(strconv.FormatInt(int64(len(data))-bodyLen, 10) + " bytes of header fields")
	}
	bodyStart := len(data) - int(bodyLen)
	r := newReader(string(data[entryFixedSize:bodyStart]))
	n := r.u16()
	// Each header line takes at least 5 bytes: no count can make us allocate
	// more than the value could hold.
	if n > MaxHeaders || n*5 > r.rest() {
		return Entry{}, corrupt(strconv.Itoa(n) + " headers")
	}
	e.Headers = make([][2]string, n)
	for i := range e.Headers {
		name, value := r.str16(), r.str16()
		if !r.ok || !storableHeader(name, value) {
			return Entry{}, corrupt("header " + strconv.Itoa(i))
		}
		e.Headers[i] = [2]string{name, value}
	}
	if v := r.u8(); v > 0 {
		if v > MaxVary {
			return Entry{}, corrupt(strconv.Itoa(v) + " varied fields")
		}
		e.Vary = make([]VaryValue, v)
		for i := range e.Vary {
			name, present := r.str8(), r.u8()
			value := r.str16()
			e.Vary[i] = VaryValue{Name: name, Value: value, Present: present == 1}
			if !r.ok || present > 1 || !storableVary(e.Vary[i]) {
				return Entry{}, corrupt("varied field " + strconv.Itoa(i))
			}
		}
	}
	if !r.ok || r.rest() != 0 {
		return Entry{}, corrupt("header fields do not fill their space")
	}
	e.Body = data[bodyStart:]
	return e, nil
}
