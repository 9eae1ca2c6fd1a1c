# ironbay example policy: no wipe of an asset tagged `production` outside the maintenance window.
#
# Load it (admin, `policies:write`):
#   jq -Rs '{name: "production-maintenance-window", description: "No production wipes outside the window", rego: .}' \
#     policies/examples/production-maintenance-window.rego |
#   curl -sS -X POST http://127.0.0.1:8080/api/v1/policies \
#     -H "Authorization: Bearer $IRONBAY_TOKEN" -H 'Content-Type: application/json' --data-binary @-
#
# The input document (see ARCHITECTURE.md, "Policies"): input.action, input.asset.{id,name,tags,state},
# input.actor, input.time.{now,weekday,hour,minute} in UTC.
package ironbay.examples.production_window

# The maintenance window, UTC: wipes of production assets are allowed on these days, from
# `window_start_hour` (inclusive) to `window_end_hour` (exclusive).
maintenance_weekdays := {"saturday"}

window_start_hour := 2

window_end_hour := 6

protected_tag := "production"

in_window if {
	input.time.weekday in maintenance_weekdays
	input.time.hour >= window_start_hour
	input.time.hour < window_end_hour
}

deny contains msg if {
	input.action == "wipe"
	protected_tag in input.asset.tags
	not in_window
	msg := sprintf(
		"asset %v is tagged %v: wipes only in the maintenance window (%v %v:00-%v:00 UTC)",
		[input.asset.name, protected_tag, concat(",", maintenance_weekdays), window_start_hour, window_end_hour],
	)
}
