package xmlrpc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ClientConfig configures a Client. The zero value is usable.
type ClientConfig struct {
	// Timeout bounds each call (connect, send, wait, read) unless the context ends sooner;
	// 0 means 10 s, the order of rospy's own socket timeouts for slave calls.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; 0 means DefaultMaxBodyBytes.
	MaxResponseBytes int64
}

// Validate reports a negative timeout or limit.
func (c ClientConfig) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("xmlrpc: negative client timeout %v", c.Timeout)
	}
	if c.MaxResponseBytes < 0 {
		return fmt.Errorf("xmlrpc: negative MaxResponseBytes %d", c.MaxResponseBytes)
	}
	return nil
}

// Client calls XML-RPC servers (ROS nodes' slave APIs, a ROS master) over HTTP. It owns its
// connection pool: Close it when done. A Client is safe for concurrent use.
type Client struct {
	timeout time.Duration
	limit   int64
	tr      *http.Transport
	hc      *http.Client
}

// NewClient returns a Client; it does no I/O.
func NewClient(c ClientConfig) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxBodyBytes
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: c.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &Client{timeout: c.Timeout, limit: c.MaxResponseBytes, tr: tr, hc: &http.Client{Transport: tr}}, nil
}

// Close drops the idle connections. Calls under way finish; the Client stays usable.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Call invokes method at the server url with params and returns its result. A fault response is
// returned as a *Fault error; transport failures, HTTP errors and malformed responses as other
// errors naming the method and url.
func (c *Client) Call(ctx context.Context, url, method string, params ...Value) (Value, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body := AppendCall(nil, method, params...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Value{}, fmt.Errorf("xmlrpc: %s at %s: %w", method, url, err)
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Value{}, fmt.Errorf("xmlrpc: %s at %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Value{}, fmt.Errorf("xmlrpc: %s at %s: HTTP %s", method, url, resp.Status)
	}
	data, err := readBody(nil, resp.Body, resp.Header.Get("Content-Encoding"), c.limit)
	if err != nil {
		return Value{}, fmt.Errorf("%w (%s at %s)", err, method, url)
	}
	v, err := DecodeResponse(data)
	if err != nil {
		if _, ok := err.(*Fault); ok {
			return Value{}, err
		}
		return Value{}, fmt.Errorf("%w (%s at %s)", err, method, url)
	}
	return v, nil
}
