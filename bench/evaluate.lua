-- POST /api/v1/policies/evaluate with a production wipe outside the maintenance window (a deny).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"input": {"action": "wipe",
  "asset": {"id": "ast_0000000000000001", "name": "node-1", "tags": ["production"], "state": "provisioned"},
  "actor": {"type": "user", "id": "usr_1", "name": "admin", "role": "admin"},
  "time": {"now": "2026-11-23T14:00:00Z", "weekday": "monday", "hour": 14, "minute": 0}}}]]
