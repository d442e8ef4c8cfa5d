package main

// errnoInval is WASI preview 1's errno_t inval.
const errnoInval = 28

// localPollOneoff is the body of the function that answers poll_oneoff inside
// the module, with the import's signature
// (in *subscription, out *event, nsubscriptions u32, nevents *u32) -> errno.
//
// A proxy-wasm VM must never block: every callback has to return to Envoy at
// once. So a subscription can always complete immediately: the function
// reports the first subscription as having occurred (its userdata, error 0,
// type = its tag), sets *nevents to 1 and returns 0. For the runtime that
// means a clock timeout that has expired (netpoll after a stop-the-world,
// usleep) — which is what netpoll(0) asks for anyway. WASI requires at least
// one subscription, so zero subscriptions answer EINVAL, as WASI hosts do.
//
// The layouts are WASI preview 1's (wasi_snapshot_preview1.witx; the Go
// runtime's structs in runtime/netpoll_wasip1.go have the same):
// subscription_t is 48 bytes, userdata u64 @0, tag u8 @8; event_t is 32
// bytes, userdata u64 @0, error u16 @8, type u8 @10, fd_readwrite @16.
// Local 0 = in, 1 = out, 2 = nsubscriptions, 3 = nevents; no further locals.
// Memory instructions carry memarg = (align as log2, offset).
var localPollOneoff = []byte{
	// if nsubscriptions == 0 { return EINVAL }
	0x20, 0x02, // local.get 2 (nsubscriptions)
	0x45,       // i32.eqz
	0x04, 0x40, // if (no result)
	0x41, errnoInval, // i32.const 28
	0x0f, // return
	0x0b, // end

	// out.userdata = in.userdata
	0x20, 0x01, // local.get 1 (out)
	0x20, 0x00, // local.get 0 (in)
	0x29, 0x03, 0x00, // i64.load align=8 offset=0
	0x37, 0x03, 0x00, // i64.store align=8 offset=0

	// out[8:32] = 0: error 0 (u16 @8), type and padding, fd_readwrite
	// (nbytes u64 @16, flags u16 @24) of an event that is not an fd event.
	0x20, 0x01, // local.get 1
	0x42, 0x00, // i64.const 0
	0x37, 0x03, 0x08, // i64.store align=8 offset=8
	0x20, 0x01, // local.get 1
	0x42, 0x00, // i64.const 0
	0x37, 0x03, 0x10, // i64.store align=8 offset=16
	0x20, 0x01, // local.get 1
	0x42, 0x00, // i64.const 0
	0x37, 0x03, 0x18, // i64.store align=8 offset=24

	// out.type = in.tag
	0x20, 0x01, // local.get 1
	0x20, 0x00, // local.get 0
	0x2d, 0x00, 0x08, // i32.load8_u align=1 offset=8
	0x3a, 0x00, 0x0a, // i32.store8 align=1 offset=10

	// *nevents = 1
	0x20, 0x03, // local.get 3 (nevents)
	0x41, 0x01, // i32.const 1
	0x36, 0x02, 0x00, // i32.store align=4 offset=0

	// return 0 (errno success)
	0x41, 0x00, // i32.const 0
	0x0b, // end
}
