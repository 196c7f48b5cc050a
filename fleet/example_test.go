package fleet_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flowact/flowact/fleet"
)

// A VLM publishing its embeddings for a robot over NATS: the payload is the ROS serialization
// of flowact_msgs/Embedding, so the same bytes serve a ROS topic and a NATS subject. The robot
// side (`flowact run --embedding nats:flowact.r1.embedding`) is an Embeddings mailbox.
func Example_publisher() {
	srv, err := fleet.NewServer(fleet.ServerConfig{Port: -1})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()

	// The robot's mailbox.
	robotConn, _ := nats.Connect(srv.ClientURL())
	defer robotConn.Close()
	mailbox, _ := fleet.NewEmbeddings(fleet.EmbeddingSubject("r1"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mailbox.Run(ctx, robotConn) }()
	defer func() { cancel(); <-done }()
	for robotConn.NumSubscriptions() == 0 {
		time.Sleep(time.Millisecond)
	}
	robotConn.Flush()

	// The publisher: 2 tokens x 3 values, stamped with the images' capture time.
	vlm, _ := nats.Connect(srv.ClientURL())
	defer vlm.Close()
	emb := fleet.Embedding{Tokens: 2, Width: 3, Data: []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, Stamp: time.Now(), FrameID: "camera"}
	if err := vlm.Publish(fleet.EmbeddingSubject("r1"), fleet.AppendEmbedding(nil, &emb)); err != nil {
		panic(err)
	}
	vlm.Flush()

	for {
		if e, err := mailbox.Latest(); err == nil {
			fmt.Printf("%d x %d from %s, last value %.1f\n", e.Tokens, e.Width, e.FrameID, e.Data[5])
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Output: 2 x 3 from camera, last value 0.6
}
