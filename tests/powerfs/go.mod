module github.com/txtdb/txtdb/tests/powerfs

go 1.26.0

require golang.org/x/sys v0.49.0

require (
	github.com/google/uuid v1.6.0
	github.com/hanwen/go-fuse/v2 v2.12.1
	github.com/txtdb/txtdb v0.0.0-00010101000000-000000000000
)

require (
	github.com/anishathalye/porcupine v1.3.1 // indirect
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/gofrs/flock v0.13.2 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)

replace github.com/txtdb/txtdb => ../..
