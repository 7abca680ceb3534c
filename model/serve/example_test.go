package serve_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/serve"
)

// A classifier served under /vit/ of a program's own mux, next to its own
// handlers. cmd/infer -serve does the same with ListenAndServe, which adds
// the timeouts and the graceful shutdown.
func ExampleNew() {
	c, err := model.LoadClassifier("../../testdata/classifier/fashion-tiny.safetensors",
		model.WithExactBatches()) // batches smaller than 16 are not padded
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	s, err := serve.New(c, serve.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	mux := http.NewServeMux()
	mux.Handle("/vit/", http.StripPrefix("/vit", s))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	f, err := os.Open("../../testdata/classifier/1-trouser.png")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	resp, err := http.Post(ts.URL+"/vit/v1/classify?topk=1", "image/png", f)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var r serve.Result
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode, r.Top[0].Label)
	// Output: 200 Trouser
}
