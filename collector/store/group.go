package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"edgecollector/collector"
)

// committer is the group mode. It owns the one writer connection and a
// queue; each turn it takes every request waiting (up to GroupMaxEvents
// events and MaxCommitBytes bytes), commits them in one transaction, so one
// fsync, then answers each. Inserts and other writes (Write, the uploader's
// checkpoint, purges) share the turn, each under a savepoint so that one
// failing does not fail the others; arrival order is kept across turns, so
// nobody starves. Under a commit-size cap, other writes run alone: the cap
// is a per-transaction limit they must be measured against by themselves.
type committer struct {
	s     *Store
	conn  *sql.Conn
	queue chan *job
	stop  chan struct{}
	done  chan struct{}
	next  *job // taken from the queue but left for the next turn; owned by run
}

// A job is either an insert request (events) or a standalone write (fn).
type job struct {
	ctx    context.Context
	events []collector.Event
	bytes  int
	fn     func(*wtx) error

	ids  []int64
	err  error
	done chan struct{} // one value once the committer is finished with the job
}

// finish tells the job's submitter that the committer is finished with it.
func (j *job) finish() { j.done <- struct{}{} }

// jobs recycles insert jobs, channel included: one per request otherwise.
var jobs = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}

func newCommitter(s *Store, conn *sql.Conn) *committer {
	c := &committer{
		s:     s,
		conn:  conn,
		queue: make(chan *job, s.opts.GroupQueue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go c.run()
	return c
}

// submit queues j and waits until the committer has finished with it. Once
// queued, a job always completes: its outcome decides what the producer is told.
func (c *committer) submit(ctx context.Context, j *job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.ctx = ctx
	select {
	case c.queue <- j: // the usual case, without making ctx's Done channel
	default:
		select {
		case c.queue <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	<-j.done
	return j.err
}

func (c *committer) do(ctx context.Context, fn func(*wtx) error) error {
	return c.submit(ctx, &job{fn: fn, done: make(chan struct{}, 1)})
}

func (c *committer) insert(ctx context.Context, events []collector.Event, bytes int) ([]int64, error) {
	j := jobs.Get().(*job)
	j.events, j.bytes = events, bytes
	err := c.submit(ctx, j)
	ids := j.ids
	// Whether or not it was queued, nobody holds j now: a queued job is
	// finished before submit returns.
	*j = job{done: j.done}
	jobs.Put(j)
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// close is called with no submit in flight (Store.Close waits for them).
func (c *committer) close() error {
	close(c.stop)
	<-c.done
	return c.conn.Close()
}

func (c *committer) run() {
	defer close(c.done)
	for {
		j := c.next
		c.next = nil
		if j == nil {
			select {
			case j = <-c.queue:
			case <-c.stop:
				return
			}
		}
		if c.alone(j) {
			j.err = c.s.retry(j.ctx, func() error { return c.s.runTx(j.ctx, c.conn, j.fn) })
			j.finish()
			continue
		}
		c.commit(c.gather(j))
	}
}

// alone reports whether j must run in a transaction of its own: under a
// commit-size cap, a standalone write is measured against the cap by itself.
func (c *committer) alone(j *job) bool { return j.fn != nil && c.s.opts.MaxCommitBytes > 0 }

// size is what a job counts against GroupMaxEvents.
func (j *job) size() int { return max(1, len(j.events)) }

// gather returns first plus the requests queued behind it that fit in one
// commit. The first request that does not fit waits in c.next.
func (c *committer) gather(first *job) []*job {
	batch := []*job{first}
	n, bytes := first.size(), first.bytes
	limit, cap := c.s.opts.GroupMaxEvents, c.s.opts.MaxCommitBytes
	for n < limit {
		select {
		case j := <-c.queue:
			if j.ctx.Err() != nil { // the caller left before its turn: do nothing
				j.err = j.ctx.Err()
				j.finish()
				continue
			}
			if c.alone(j) || n+j.size() > limit || (cap > 0 && bytes+j.bytes > cap) {
				c.next = j
				return batch
			}
			batch = append(batch, j)
			n, bytes = n+j.size(), bytes+j.bytes
		default:
			return batch
		}
	}
	return batch
}

// commit writes batch in one transaction. A request that fails on its own
// (over the cap, a constraint, a Write's own error) fails alone; anything
// else fails the transaction, and so every request in it.
//
// The first try inserts every request's events in as few statements as
// possible, with statements whose failure undoes the whole transaction (so
// SQLite keeps no statement journal, and no savepoint is needed). If a
// request fails on its own there, the try is undone and the batch goes
// again, request by request, each under a savepoint of its own.
func (c *committer) commit(batch []*job) {
	var inserts, writes []*job
	for _, j := range batch {
		if j.fn != nil {
			writes = append(writes, j)
		} else {
			inserts = append(inserts, j)
		}
	}
	// The batch is committed whatever happens to any one caller's context:
	// its requests are already promised an answer.
	ctx := context.WithoutCancel(batch[0].ctx)
	careful := false
	try := func() error {
		return c.s.runTx(ctx, c.conn, func(t *wtx) error {
			for _, j := range batch {
				j.ids, j.err = nil, nil
			}
			if !careful {
				if err := c.insertAll(ctx, t, inserts); err != nil {
					return err
				}
			} else {
				for _, j := range inserts {
					if err := c.insertOne(ctx, t, j); err != nil {
						if !c.s.requestLocal(err) {
							return err
						}
						j.err = c.s.classify(err)
					}
				}
			}
			for _, j := range writes {
				if err := c.writeOne(t, j); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := c.s.retry(ctx, try)
	if errors.Is(err, errCareful) {
		careful = true
		err = c.s.retry(ctx, try)
	}
	if err == nil && len(inserts) > 0 {
		c.s.stats.commits.Add(1)
		// The last step before the acknowledgements (write.go, Store.unstore).
		if ferr := c.s.checkFile(); ferr != nil {
			var ids []int64
			for _, j := range inserts {
				if j.err == nil {
					ids = append(ids, j.ids...)
				}
			}
			c.s.unstore(ctx, func(ctx context.Context, fn func(*wtx) error) error { return c.s.runTx(ctx, c.conn, fn) }, ids)
			for _, j := range inserts {
				if j.err == nil {
					j.ids, j.err = nil, ferr
				}
			}
		}
	}
	for _, j := range batch {
		if err != nil {
			j.ids, j.err = nil, err
		}
		j.finish()
	}
}

// errCareful ends a group commit's first try when a request in it failed on
// its own: the batch goes again, request by request.
var errCareful = errors.New("a request failed on its own; going request by request")

// insertAll is the first try: every request's events in as few statements
// as possible, the statements that roll the transaction back if one fails.
func (c *committer) insertAll(ctx context.Context, t *wtx, batch []*job) error {
	if len(batch) == 0 {
		return nil
	}
	all := batch[0].events
	bytes := batch[0].bytes
	if len(batch) > 1 {
		all = nil
		for _, j := range batch {
			all = append(all, j.events...)
		}
		bytes = 0
		for _, j := range batch {
			bytes += j.bytes
		}
	}
	ids, err := t.insertEvents(ctx, all, bytes, &c.s.insertOrRollback)
	if err != nil {
		if c.s.requestLocal(err) {
			return errCareful
		}
		return err
	}
	for _, j := range batch {
		j.ids, ids = ids[:len(j.events):len(j.events)], ids[len(j.events):]
	}
	return nil
}

// writeOne runs one Write inside the group transaction, under a savepoint.
func (c *committer) writeOne(t *wtx, j *job) error {
	before := t.bytes
	if _, err := t.ExecContext(t.ctx, `SAVEPOINT request`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err := j.fn(t)
	if err != nil {
		if !c.s.writeLocal(err) {
			return err
		}
		t.bytes = before
		if _, rerr := t.ExecContext(t.ctx, `ROLLBACK TO request`); rerr != nil {
			return fmt.Errorf("rollback to savepoint: %w", rerr)
		}
		j.err = c.s.classify(err)
	}
	if _, rerr := t.ExecContext(t.ctx, `RELEASE request`); rerr != nil {
		return fmt.Errorf("release savepoint: %w", rerr)
	}
	return nil
}

// insertOne inserts one request's events inside the group transaction, with
// the statements whose failure undoes only themselves. A single event needs
// no savepoint: a failed statement leaves nothing behind.
func (c *committer) insertOne(ctx context.Context, t *wtx, j *job) error {
	before := t.bytes
	if len(j.events) == 1 {
		ids, err := t.insertEvents(ctx, j.events, j.bytes, &c.s.insert)
		if err != nil {
			t.bytes = before
			return err
		}
		j.ids = ids
		return nil
	}
	if _, err := t.ExecContext(ctx, `SAVEPOINT request`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	ids, err := t.insertEvents(ctx, j.events, j.bytes, &c.s.insert)
	if err != nil {
		t.bytes = before
		if _, rerr := t.ExecContext(ctx, `ROLLBACK TO request`); rerr != nil {
			return fmt.Errorf("rollback to savepoint: %w", rerr)
		}
	}
	if _, rerr := t.ExecContext(ctx, `RELEASE request`); rerr != nil {
		return fmt.Errorf("release savepoint: %w", rerr)
	}
	if err != nil {
		return err
	}
	j.ids = ids
	return nil
}
