"""A session of python etcd3gw (OpenStack's etcd v3 gateway client) against
the server on 127.0.0.1:<port>: KV, leases, a watch, a lock. Prints one line
per step, the same for etcd and keel (no ids or versions)."""
import sys
import threading

import etcd3gw

port = int(sys.argv[1])
c = etcd3gw.client(host="127.0.0.1", port=port)
print("status has", sorted(k for k in c.status() if k in ("header", "leader", "dbSize", "raftIndex")))
print("members", len(c.members()))
print("put", c.put("/gw/a", "1"))
print("get", c.get("/gw/a"))
lease = c.lease(ttl=30)
c.put("/gw/b", "2", lease=lease)
print("lease ttl > 0", lease.ttl() > 0, "keys", lease.keys())
print("prefix", sorted(v.decode() for v, _ in c.get_prefix("/gw/")))
print("create", c.create("/gw/c", "3"), c.create("/gw/c", "3"))
print("replace", c.replace("/gw/c", "3", "4"), c.replace("/gw/c", "3", "5"), c.get("/gw/c"))
events, cancel = c.watch("/gw/w")
threading.Timer(0.5, lambda: c.put("/gw/w", "x")).start()
for event in events:
    print("watch", event["kv"]["key"], event["kv"]["value"])
    break
cancel()
print("refresh", lease.refresh() > 0)
print("revoke", lease.revoke(), c.get("/gw/b"))
print("delete", c.delete("/gw/a"), c.get("/gw/a"), c.delete("/gw/a"))
lock = c.lock("L", ttl=10)
print("lock", lock.acquire(), lock.is_acquired(), lock.release())
print("ok")
