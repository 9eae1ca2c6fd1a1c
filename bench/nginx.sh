# Shared by the bench scripts that compare against nginx. Source it, then
#   start_nginx DIR PORT IMAGES [LAUNCHER...]
# writes DIR/nginx.conf (one worker, sendfile on, no access log, /images/ -> IMAGES on
# 127.0.0.1:PORT), starts nginx in the foreground under LAUNCHER (e.g. `taskset -c 0`) and appends
# its PID to the caller's PIDS array (the caller's cleanup kills it).
start_nginx() {
  local dir=$1 port=$2 images=$3
  shift 3
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  types { application/octet-stream img; }
  server {
    listen 127.0.0.1:$port;
    location /images/ { alias $images/; }
  }
}
CONF
  "$@" nginx -c "$dir/nginx.conf" -p "$dir" &
  PIDS+=($!)
}
