// gohello: a statically linked Go program (CGO_ENABLED=0), for the real-program tests. The Go
// runtime installs its own SIGSEGV handler, so under elfload's demand policies it receives the
// loader's faults: the README lists that as a known limit, and the tests check it.
package main

import (
	"fmt"
	"os"
	"sort"
	"sync"
)

func main() {
	fmt.Println("hello from go, args:", os.Args[1:])
	// Goroutines on several threads, a map, and a sort: the runtime at work.
	var wg sync.WaitGroup
	sums := make([]int, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			m := map[int]int{}
			for i := 0; i < 20000; i++ {
				m[i%97] += i * g
			}
			for _, v := range m {
				sums[g] += v
			}
		}(g)
	}
	wg.Wait()
	sort.Ints(sums)
	fmt.Println("sums:", sums)
}
