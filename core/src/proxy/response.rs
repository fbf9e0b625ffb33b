//! RFC 3261 §16.7 (response processing), §16.8 (Timer C) and the end of a response context.

use super::{best, branch_mut, BranchState, Candidate, ContextId};
use crate::element::{unschedule, ClientKey, ClientMachine, TimerRef};
use crate::message::{HeaderName, Message, Method};
use crate::registrar::Reply;
use crate::time::Instant;
use crate::{Datagram, Output, Proxy, Transmit};

impl Proxy {
    /// §17.1.3 then §16.7: a response arrives; its client transaction takes it first.
    pub(crate) fn handle_response(&mut self, msg: Message, d: &Datagram<'_>) {
        let branch = msg.top_via_branch();
        let method = msg.cseq().map(|c| c.method);
        let (Some(branch), Some(method)) = (branch, method) else {
            return self.drop_datagram(d.remote, "response without branch or CSeq");
        };
        let Some(status) = msg.status() else {
            return;
        };
        // The stored key, found without building one: the effects below keep a copy of it
        // (a shared string) for the next timer.
        let clients = &self.clients;
        let key = ClientKey::with_text(branch, method, |text| {
            clients.get_key_value(text).map(|(k, _)| k.clone())
        });
        let now = self.now;
        let Some((key, tx)) = key.and_then(|k| self.clients.get_mut(&k).map(|tx| (k, tx))) else {
            // §16.7 / RFC 6026 §7.3: a response with no transaction is not forwarded.
            return self.drop_datagram(d.remote, "response matches no client transaction");
        };
        let effects = match &mut tx.machine {
            ClientMachine::Invite(m) => {
                let (request, limits) = (&tx.request, &self.config.limits.message);
                m.on_response(status, now, || {
                    request
                        .as_deref()
                        .and_then(|r| Message::parse(r, limits).ok())
                        .and_then(|r| r.ack_for(&msg))
                        .unwrap_or_default()
                })
            }
            ClientMachine::NonInvite(m) => m.on_response(status, now),
        };
        self.client_effects(&key, effects, Some((&msg, d.remote)));
        self.spare.recycle(msg);
    }

    /// §16.7 steps 3-10 for a response its client transaction passed up; `from` sent it.
    pub(crate) fn branch_response(
        &mut self,
        id: ContextId,
        index: usize,
        msg: &Message,
        from: std::net::SocketAddr,
    ) {
        let Some(status) = msg.status() else {
            return;
        };
        let now = self.now;
        let timer_c = self.config.proxy.timer_c;
        let Some(ctx) = self.contexts.get_mut(&id) else {
            // RFC 6026 §7.2: a 2xx retransmission after the context ended is forwarded
            // statelessly; anything else belongs to nobody.
            if (200..300).contains(&status) {
                self.forward_response_stateless(msg, from);
            }
            return;
        };
        let invite = ctx.invite;
        let Some(branch) = ctx.branches.get_mut(index) else {
            return;
        };
        if status < 200 {
            let first = branch.state == BranchState::Trying;
            if first {
                branch.state = BranchState::Proceeding;
            }
            let owed_cancel = branch.cancelled;
            // §16.7 step 2: a provisional other than 100 restarts Timer C; once the branch
            // is cancelled, the 64*T1 its CANCEL allows (§9.1) is not extended.
            if invite && status > 100 && !owed_cancel {
                self.set_timer_c(id, index, Some(now + timer_c));
            }
            if owed_cancel && first {
                self.cancel_branch(id, index);
            }
            // §16.7 step 5: provisional responses other than 100 go upstream at once.
            if status > 100 {
                self.upstream(id, status, msg.without_top_via());
            }
            return;
        }
        branch.state = BranchState::Done { status };
        self.set_timer_c(id, index, None);
        if (200..300).contains(&status) {
            // §16.7 step 5: every 2xx goes upstream at once (RFC 6026: later ones too).
            self.upstream(id, status, msg.without_top_via());
            if let Some(ctx) = self.contexts.get_mut(&id) {
                ctx.final_sent = true;
            }
            // §16.7 step 10: a 2xx to an INVITE cancels the other branches.
            if invite {
                self.cancel_pending(id);
            }
        } else {
            let challenges = [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate]
                .iter()
                .flat_map(|h| {
                    msg.values(h)
                        .map(move |v| (h.as_str().to_owned(), v.to_owned()))
                })
                .collect();
            if let Some(ctx) = self.contexts.get_mut(&id) {
                ctx.candidates.push(Candidate {
                    status,
                    bytes: Some(msg.without_top_via()),
                    challenges,
                });
            }
            // §16.7 step 9: a 6xx ends the search.
            if status >= 600 && invite {
                if let Some(ctx) = self.contexts.get_mut(&id) {
                    ctx.later.clear();
                }
                self.cancel_pending(id);
            }
        }
        self.finish_if_done(id);
    }

    /// The branch's client transaction timed out or could not send: a 408 in the response
    /// context (§16.7 step 6 builds it if it is the best).
    pub(crate) fn branch_failed(&mut self, id: ContextId, index: usize) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        let Some(branch) = ctx.branches.get_mut(index) else {
            return;
        };
        if branch.is_done() {
            return;
        }
        branch.state = BranchState::Done { status: 408 };
        ctx.candidates.push(Candidate {
            status: 408,
            bytes: None,
            challenges: Vec::new(),
        });
        self.set_timer_c(id, index, None);
        self.finish_if_done(id);
    }

    fn cancel_pending(&mut self, id: ContextId) {
        let pending: Vec<usize> = match self.contexts.get(&id) {
            Some(ctx) => (0..ctx.branches.len())
                .filter(|i| !ctx.branches[*i].is_done())
                .collect(),
            None => return,
        };
        for i in pending {
            self.cancel_branch(id, i);
        }
    }

    /// §16.8: Timer C fired for a branch. With a provisional response, CANCEL it (which
    /// resets Timer C to 64*T1); if it fires again on the cancelled branch, no final response
    /// came in the time §9.1 allows after a CANCEL, so the client transaction is terminated and
    /// the branch ends as a 408. Without a provisional, treat it as a 408 (its client
    /// transaction is left to end by itself).
    pub(crate) fn timer_c(&mut self, id: ContextId, index: usize) {
        let now = self.now;
        let Some(branch) = branch_mut(&mut self.contexts, id, index) else {
            return;
        };
        // The entry that brought us here is gone from the index.
        branch.timer_c_entry = None;
        match branch.timer_c {
            Some(at) if at <= now => {}
            // Restarted since the entry went in: it goes back in for the new deadline.
            later @ Some(_) => return self.set_timer_c(id, index, later),
            None => return,
        }
        match branch.state {
            BranchState::Proceeding if branch.cancelled => {
                let key = branch.key.clone();
                self.clients.remove(&key);
                self.branch_failed(id, index);
            }
            BranchState::Proceeding => {
                self.set_timer_c(id, index, None);
                self.cancel_branch(id, index);
            }
            BranchState::Trying => self.branch_failed(id, index),
            BranchState::Done { .. } => {}
        }
    }

    /// §16.8: Timer C of branch `index` now ends at `at` (`None`: stopped). The timer index
    /// holds one entry per branch, at or before the deadline. A later deadline (every
    /// provisional response restarts Timer C, three minutes on) changes the branch only:
    /// the entry, when its time comes, finds the new deadline and goes back in for it
    /// ([`Proxy::timer_c`]). An earlier deadline (a CANCEL's 64*T1) or a stop moves or
    /// removes the entry, which would otherwise hold memory for minutes.
    pub(crate) fn set_timer_c(&mut self, id: ContextId, index: usize, at: Option<Instant>) {
        let Some(branch) = branch_mut(&mut self.contexts, id, index) else {
            return;
        };
        branch.timer_c = at;
        let entry = branch.timer_c_entry;
        if matches!((entry, at), (Some(entry), Some(at)) if entry <= at) {
            return;
        }
        branch.timer_c_entry = at;
        unschedule(&mut self.timers, entry, TimerRef::TimerC(id, index));
        self.schedule(at, TimerRef::TimerC(id, index));
    }

    pub(crate) fn client_timeout(&mut self, key: &ClientKey) {
        let now = self.now;
        let Some(tx) = self.clients.get_mut(key) else {
            return;
        };
        let effects = match &mut tx.machine {
            ClientMachine::Invite(m) => m.on_timeout(now),
            ClientMachine::NonInvite(m) => m.on_timeout(now),
        };
        self.client_effects(key, effects, None);
    }

    /// When every branch has answered: fork to the next q group, or send the best response
    /// upstream (§16.7 step 6) and forget the context.
    pub(crate) fn finish_if_done(&mut self, id: ContextId) {
        let Some(ctx) = self.contexts.get_mut(&id) else {
            return;
        };
        if ctx.lookups > 0 || !ctx.branches.iter().all(|b| b.is_done()) {
            return;
        }
        if !ctx.final_sent && !ctx.cancelled {
            if let Some(group) = ctx.later.pop_front() {
                for t in group {
                    self.fork(id, t);
                }
                return;
            }
        }
        let Some(ctx) = self.contexts.remove(&id) else {
            return;
        };
        self.context_ended(&ctx);
        // The request is done with: its buffers serve the next message parsed.
        self.spare.recycle(ctx.request);
    }

    /// §16.7 step 6 for the context just removed: unless a final response went upstream
    /// already, the best one goes now.
    fn context_ended(&mut self, ctx: &super::ResponseContext) {
        if ctx.final_sent {
            return;
        }
        let Some(chosen) = best(&ctx.candidates) else {
            // No branch ever left (it was waiting for DNS) and the request was cancelled:
            // §16.10, the INVITE still gets its final response.
            if ctx.cancelled && ctx.invite {
                self.respond(&ctx.upstream, &ctx.request, Reply::new(487));
            }
            return;
        };
        // RFC 4320 §4.2: no 408 upstream for a non-INVITE; the client times out by itself.
        // The server transaction will never send a final response, so nothing can end it:
        // it goes now. The client's own Timer F started before ours, so its retransmissions
        // are over.
        if chosen.status == 408 && !ctx.invite {
            self.servers.remove(&ctx.upstream);
            return;
        }
        let mut status = chosen.status;
        let bytes = match (&chosen.bytes, status) {
            // §16.7 step 6: a 503 is not passed on as a 503 (the caller would think this
            // proxy is unavailable); it becomes 500.
            (_, 503) => {
                status = 500;
                None
            }
            (Some(b), _) => Some(b.clone()),
            (None, _) => None,
        };
        let mut bytes = match bytes {
            Some(b) => b,
            None => {
                let reply = Reply::new(status);
                self.build(&ctx.request, ctx.remote, &reply)
            }
        };
        // §16.7 step 7: a 401 or 407 also carries, unmodified, the challenges of every
        // other 401 and 407 received, so that the caller answers all of them at once.
        if matches!(status, 401 | 407) {
            let mut lines = Vec::new();
            for c in ctx.candidates.iter().filter(|c| !std::ptr::eq(*c, chosen)) {
                if matches!(c.status, 401 | 407) {
                    for (name, value) in &c.challenges {
                        lines.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                    }
                }
            }
            // Just before the blank line that ends the header section.
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                bytes.splice(end + 2..end + 2, lines);
            }
        }
        let key = ctx.upstream.clone();
        self.send_response(&key, &ctx.request, status, bytes);
    }

    /// Sends a response upstream through the server transaction of context `id`; a 2xx
    /// after the transaction moved on (RFC 6026 Accepted) goes out directly.
    fn upstream(&mut self, id: ContextId, status: u16, bytes: Vec<u8>) {
        let Some(ctx) = self.contexts.get(&id) else {
            return;
        };
        let key = ctx.upstream.clone();
        let request_is_invite = ctx.request.method() == Some(&Method::Invite);
        if let Some(tx) = self.servers.get(&key) {
            let accepted = matches!(&tx.machine, crate::element::ServerMachine::Invite(m) if m.state_name() == "Accepted");
            if (200..300).contains(&status) && request_is_invite && accepted {
                let t = Transmit {
                    transport: tx.transport,
                    local: tx.local,
                    remote: tx.target,
                    bytes,
                };
                self.queue.push_back(Output::Transmit(t));
                return;
            }
        }
        // The request stays in its context: only the report of a final response reads it.
        let report = self.completion_report(&ctx.request, status);
        self.hand_response(&key, status, bytes, report);
    }

    /// §16.11 / §18.2.2 for a response with no context: our Via off, then to the next Via's
    /// `received` address (or sent-by) and `rport` (or sent-by port). A response with nowhere
    /// to go is dropped with a reason (`from` sent it).
    pub(crate) fn forward_response_stateless(&mut self, msg: &Message, from: std::net::SocketAddr) {
        let bytes = msg.without_top_via();
        let Some(via) = msg.vias().get(1).cloned() else {
            return self.drop_datagram(from, "2xx retransmission without a Via to forward it to");
        };
        let port = match via.rport() {
            Some(Some(p)) => p,
            _ => via.port.unwrap_or(5060),
        };
        // RFC 5118 §4.5: `received` with or without brackets.
        let ip = via.received_ip().or_else(|| via.host_ip()).or_else(|| {
            self.locator
                .hosts
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(via.host))
                .map(|(_, a)| a.ip())
        });
        let Some(ip) = ip else {
            return self.drop_datagram(from, "2xx retransmission for a Via host with no address");
        };
        let local = self
            .config
            .local_addrs
            .first()
            .copied()
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 5060)));
        let transport = if via.transport.eq_ignore_ascii_case("TCP") {
            crate::Transport::Tcp
        } else {
            crate::Transport::Udp
        };
        self.queue.push_back(Output::Transmit(Transmit {
            transport,
            local,
            remote: std::net::SocketAddr::new(ip, port),
            bytes,
        }));
    }
}
