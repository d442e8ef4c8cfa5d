;; The cheapest proxy-wasm HTTP filter there can be: no language runtime, no
;; host calls, every callback returns at once (Continue). BenchmarkCompare
;; runs it in Envoy's wasm filter to measure what the filter and V8 cost
;; per request before a plugin does anything: the floor under any plugin's
;; figures. It exports the callbacks the Go SDK exports, so Envoy makes the
;; same calls into the VM per request as it does into Portcullis.
(module
 (memory $memory 2)
 (export "memory" (memory $memory))
 (func (export "proxy_abi_version_0_2_0"))
 ;; Envoy never asks for memory: nothing here reads a buffer or a header.
 (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
 (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
 (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
 (func (export "proxy_on_context_create") (param i32 i32))
 (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
 (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
 (func (export "proxy_on_request_trailers") (param i32 i32) (result i32) (i32.const 0))
 (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
 (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) (i32.const 0))
 (func (export "proxy_on_response_trailers") (param i32 i32) (result i32) (i32.const 0))
 (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32))
 (func (export "proxy_on_log") (param i32))
 (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
 (func (export "proxy_on_delete") (param i32))
 (func (export "proxy_on_tick") (param i32))
 (func (export "proxy_on_queue_ready") (param i32 i32))
)
