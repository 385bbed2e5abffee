"""ReadIndex bookkeeping on the leader (Raft thesis 6.4).

In ReadOnlySafe mode a read request records the commit index at arrival, and is answered
once a quorum has acknowledged a heartbeat carrying the request's context: that proves
the leader was still the leader when it recorded the index. ReadOnlyLeaseBased answers at
once, relying on clock-bounded leases (needs check_quorum).
"""
READ_ONLY_SAFE = 0
READ_ONLY_LEASE_BASED = 1


class ReadIndexStatus:
    __slots__ = ("req", "index", "acks")

    def __init__(self, req, index):
        self.req = req
        self.index = index
        self.acks = {}


class ReadOnly:
    def __init__(self, option):
        self.option = option
        self.pending = {}  # request context -> ReadIndexStatus
        self.queue = []    # contexts in arrival order

    def add_request(self, index, m):
        ctx = m.entries[0].data
        if ctx in self.pending:
            return
        self.pending[ctx] = ReadIndexStatus(m, index)
        self.queue.append(ctx)

    def recv_ack(self, id_, ctx):
        """Record that id_ acked the heartbeat for ctx; returns the ack map (or None)."""
        rs = self.pending.get(ctx)
        if rs is None:
            return None
        rs.acks[id_] = True
        return rs.acks

    def advance(self, ctx):
        """Pop every request up to and including ctx: a quorum ack for a later request
        also confirms the earlier ones."""
        if ctx not in self.pending:
            return []
        out = []
        i = 0
        for c in self.queue:
            i += 1
            out.append(self.pending.pop(c))
            if c == ctx:
                break
        del self.queue[:i]
        return out

    def last_pending_request_ctx(self):
        return self.queue[-1] if self.queue else b""
