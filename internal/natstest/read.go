package natstest

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is one message read back from a stream.
type Msg struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	Stored  time.Time // when the stream stored it
}

// ReadStream reads every message of stream through an ordered consumer, in
// sequence order, up to the last sequence the stream had when called.
func ReadStream(ctx context.Context, url, stream string) ([]Msg, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	want := info.State.Msgs
	if want == 0 {
		return nil, nil
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	msgs := make([]Msg, 0, want)
	for uint64(len(msgs)) < want {
		if err := ctx.Err(); err != nil {
			return msgs, fmt.Errorf("read stream %s: %d of %d messages: %w", stream, len(msgs), want, err)
		}
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return msgs, fmt.Errorf("read stream %s: %w", stream, err)
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return msgs, fmt.Errorf("read stream %s: %w", stream, err)
			}
			msgs = append(msgs, Msg{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Stored: md.Timestamp})
		}
		if err := batch.Error(); err != nil {
			return msgs, fmt.Errorf("read stream %s: %w", stream, err)
		}
	}
	return msgs, nil
}
