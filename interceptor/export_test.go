package interceptor

// Watching returns how many open streams s watches, for tests.
func Watching(s *Server) int { return s.index.watching() }
