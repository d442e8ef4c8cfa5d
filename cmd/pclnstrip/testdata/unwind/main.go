// Command unwind makes the Go runtime read every table pclnstrip keeps: it
// grows and copies goroutine stacks (the stack-pointer and stack-map tables),
// collects garbage with live pointers deep in those stacks, recovers panics
// the way the plugin's callbacks do (recover walks the frames, inlined ones
// included, by their function kinds), then panics, so that the runtime
// prints a traceback (the names and lines pclnstrip drops).
package main

import (
	"os"
	"runtime"
	"strconv"
)

type node struct {
	next  *node
	value int
}

// recurse keeps a pointer in every frame, and collects at the bottom: the
// collector must find all of them, or the sum comes out wrong.
func recurse(depth int, list *node) int {
	n := &node{next: list, value: depth}
	if depth == 0 {
		runtime.GC()
		sum := 0
		for ; n != nil; n = n.next {
			sum += n.value
		}
		return sum
	}
	return recurse(depth-1, n) + 0*n.value
}

// callback recovers as filter/plugin's httpContext.recoverPanic does: a
// deferred method call.
type callback struct{ recovered string }

func (c *callback) run(f func()) {
	defer c.recover()
	f()
}

func (c *callback) recover() {
	if r := recover(); r != nil {
		c.recovered, _ = r.(string)
	}
}

func main() {
	done := make(chan int)
	for i := range 4 {
		go func() { done <- recurse(2000+i, nil) }()
	}
	total := 0
	for range 4 {
		total += <-done
	}
	os.Stdout.WriteString("sum " + strconv.Itoa(total) + "\n")
	var c callback
	c.run(func() { panic("in a callback") })
	os.Stdout.WriteString("recovered: " + c.recovered + "\n")
	if len(os.Args) > 1 && os.Args[1] == "panic" {
		panic("unwind: " + strconv.Itoa(total))
	}
}
