-- wrk script for bench/enroll.sh: every request enrolls a device with the same multi-use token
-- and public key (the body file is written by the script). Counts non-201 answers.
local f = assert(io.open(os.getenv("ENROLL_BODY"), "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
