package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
)

// Response is an answer as the client reads it.
type Response struct {
	Status int
	Header Header
	// Body reads the body: to its Content-Length, through its chunks, or to the end of the
	// connection.
	Body io.Reader
}

// WriteRequest writes one request; a body (nil for none) goes as JSON with its length.
func WriteRequest(w io.Writer, method, path string, body []byte) error {
	b := make([]byte, 0, 128+len(body))
	b = fmt.Appendf(b, "%s %s HTTP/1.1\r\nHost: tend\r\nConnection: close\r\n", method, path)
	if body != nil {
		b = fmt.Appendf(b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	_, err := w.Write(b)
	return err
}

// ErrMalformed is an answer that is not HTTP/1.1 as the server writes it.
var ErrMalformed = errors.New("malformed HTTP answer")

// ReadResponse reads the status line and header fields of an answer from br; its Body then
// reads from br.
func ReadResponse(br *bufio.Reader) (*Response, error) {
	tp := textproto.NewReader(br)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, err
		}
		proto, rest, _ := strings.Cut(line, " ")
		code, _, _ := strings.Cut(rest, " ")
		status, err := strconv.Atoi(code)
		if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
			return nil, fmt.Errorf("%w: status line %q", ErrMalformed, line)
		}
		mh, err := tp.ReadMIMEHeader()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if status == 100 {
			continue // 100 Continue comes before the answer
		}
		r := &Response{Status: status, Header: Header{}, Body: br}
		for k, v := range mh {
			r.Header[k] = v[0]
		}
		switch {
		case strings.EqualFold(r.Header.Get("Transfer-Encoding"), "chunked"):
			r.Body = &chunked{br: br}
		case r.Header.Get("Content-Length") != "":
			n, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: Content-Length %q", ErrMalformed, r.Header.Get("Content-Length"))
			}
			r.Body = &exact{r: io.LimitReader(br, n), n: n}
		}
		return r, nil
	}
}

// exact is a body of a known length: ending sooner is an error, not a short answer.
type exact struct {
	r io.Reader
	n int64
}

func (e *exact) Read(p []byte) (int, error) {
	k, err := e.r.Read(p)
	e.n -= int64(k)
	if err == io.EOF && e.n > 0 {
		return k, io.ErrUnexpectedEOF
	}
	return k, err
}

// chunked decodes a chunked body (an older daemon's net/http answers so).
type chunked struct {
	br   *bufio.Reader
	left int64
	done bool
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		size, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: chunk size %q", ErrMalformed, size)
		}
		if n == 0 {
			c.done = true
			return 0, io.EOF
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	k, err := c.br.Read(p)
	c.left -= int64(k)
	if c.left == 0 && err == nil {
		if _, err := c.br.Discard(2); err != nil { // the chunk's CRLF
			return k, io.ErrUnexpectedEOF
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return k, err
}
