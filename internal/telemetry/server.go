package telemetry

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Server is the runner's side: it accepts worker connections on loopback (or
// any address) and decodes each one's frames into the Conn its Hello is
// accepted with.
type Server struct {
	ln      net.Listener
	accept  Accept
	onError func(error)

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Listen starts a server on addr ("127.0.0.1:0" picks a free port). onError,
// if not nil, receives decode errors of a connection (which is then closed).
func Listen(addr string, accept Accept, onError func(error)) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for telemetry: %w", err)
	}
	s := &Server{ln: ln, accept: accept, onError: onError, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is the address workers dial.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.conns == nil {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(conn)
	}
}

func (s *Server) serve(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	br := bufio.NewReaderSize(conn, 64<<10)
	if err := decode(br, br, s.accept); err != nil && !errors.Is(err, net.ErrClosed) && s.onError != nil {
		s.onError(err)
	}
}

// Close stops accepting, waits for every connection to be read to its end
// (workers close theirs when they exit) or until ctx ends, then cuts the rest.
func (s *Server) Close(ctx context.Context) error {
	err := s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.conns = nil
		s.mu.Unlock()
		<-done
	}
	s.mu.Lock()
	s.conns = nil
	s.mu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
