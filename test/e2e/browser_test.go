package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowserWelcomePage loads the built-in welcome page in headless Chromium
// and waits for its WebSocket echo through sluice to succeed.
func TestBrowserWelcomePage(t *testing.T) {
	ctx := chromiumContext(t)
	startDefault(t)

	const expr = `(function(){ var e = document.getElementById("status"); return !!e && e.textContent.trim() === "WebSocket echo OK"; })()`
	err := chromedp.Run(ctx,
		chromedp.Navigate("https://127.0.0.1:8443/"),
		chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(20*time.Second)),
	)
	if err != nil {
		var status string
		shot, cancelShot := context.WithTimeout(ctx, 5*time.Second)
		chromedp.Run(shot, chromedp.Evaluate(`(function(){ var e = document.getElementById("status"); return e ? e.textContent : "(no #status element)"; })()`, &status))
		cancelShot()
		t.Fatalf("#status never became \"WebSocket echo OK\" within 20 s: %v; #status text: %q", err, status)
	}
}

// chromiumContext starts headless Chromium (skipping the test where it is not installed, outside CI) and returns
// a context for chromedp.Run, with the browser started, that ends after 40 s or with the test.
func chromiumContext(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not found (apt-get install chromium); required in CI", chromiumPath)
		}
		t.Fatalf("%s not found in CI: %v", chromiumPath, err)
	}
	// Start the browser now. Left to the test's first Run, a browser that failed to start was started again by
	// the next Run on the same context (a test's diagnostics after a failure), and chromedp v0.14 then panics
	// ("close of closed channel" in ExecAllocator.Allocate), hiding the failure and every other test's result.
	// A start that fails is tried once more, with a new browser, before the test fails.
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		var ctx context.Context
		if ctx, err = startChromium(t); err == nil {
			return ctx
		}
		t.Logf("starting %s (attempt %d): %v", chromiumPath, attempt, err)
	}
	t.Fatalf("%s did not start: %v", chromiumPath, err)
	return nil
}

// startChromium starts one headless Chromium; its context ends after 40 s, with the test, or at once when the
// start failed.
func startChromium(t *testing.T) (context.Context, error) {
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(profileDir(t)),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 40*time.Second)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Run(ctx); err != nil {
		cancelTimeout()
		cancel()
		cancelAlloc()
		return nil, err
	}
	return ctx, nil
}

// profileDir is a browser profile directory removed after the test. Chromium's helper processes may still be
// writing into it for a moment after the browser exits, so removal is retried instead of failing the test the way
// t.TempDir's cleanup does.
func profileDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "sluice-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 20; i++ {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}
