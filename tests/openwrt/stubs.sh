# Stand-ins for the OpenWrt shell functions ftp-proxy.init uses, so its
# UCI → command line translation runs on any POSIX sh. config_load reads
# real UCI text from $UCI_DIR/<name>, as uci(1) files are written; procd_*
# print what they were given.

unq() {
	printf '%s' "$1" | sed "s/^'\([^']*\)'.*/\1/; s/^\"\([^\"]*\)\".*/\1/; s/[[:space:]]*#.*//"
}

config_load() {
	CONFIG_SECTIONS=""
	local kw name rest sec="" n=0 v len
	while read -r kw name rest; do
		case "$kw" in
		config)
			n=$((n + 1))
			sec=$(unq "$rest")
			[ -n "$sec" ] || sec="cfg$n"
			CONFIG_SECTIONS="$CONFIG_SECTIONS $sec"
			eval "CONFIG_${sec}_TYPE=\$name"
			;;
		option)
			v=$(unq "$rest")
			eval "CONFIG_${sec}_${name}=\$v"
			;;
		list)
			v=$(unq "$rest")
			eval "len=\${CONFIG_${sec}_${name}_LENGTH:-0}"
			len=$((len + 1))
			eval "CONFIG_${sec}_${name}_ITEM${len}=\$v"
			eval "CONFIG_${sec}_${name}_LENGTH=$len"
			;;
		esac
	done < "$UCI_DIR/$1"
	# A value a UCI file line cannot hold (a newline): UCI_SET names the
	# variable (SECTION_OPTION), UCI_VALUE holds the value.
	if [ -n "${UCI_SET:-}" ]; then
		eval "CONFIG_${UCI_SET}=\$UCI_VALUE"
	fi
}

# Locals carry a prefix: sh scoping is dynamic, and a caller's variable
# of the same name would be shadowed.
# As OpenWrt's: an empty option reads as unset (the default).
config_get() {
	local _cg_var="$1" _cg_sec="$2" _cg_opt="$3" _cg_def="$4" _cg_v
	eval "_cg_v=\${CONFIG_${_cg_sec}_${_cg_opt}:-\$_cg_def}"
	eval "$_cg_var=\$_cg_v"
}

config_get_bool() {
	local _cb_v
	config_get _cb_v "$2" "$3" "$4"
	case "$_cb_v" in
	1 | on | true | yes | enabled) _cb_v=1 ;;
	*) _cb_v=0 ;;
	esac
	eval "$1=\$_cb_v"
}

config_list_foreach() {
	local sec="$1" opt="$2" fn="$3" len i v
	eval "len=\${CONFIG_${sec}_${opt}_LENGTH:-0}"
	i=1
	while [ "$i" -le "$len" ]; do
		eval "v=\$CONFIG_${sec}_${opt}_ITEM$i"
		"$fn" "$v"
		i=$((i + 1))
	done
}

config_foreach() {
	local fn="$1" type="$2" s t
	for s in $CONFIG_SECTIONS; do
		eval "t=\$CONFIG_${s}_TYPE"
		[ "$t" = "$type" ] && "$fn" "$s"
	done
}

procd_open_instance() { echo "instance $1"; }
procd_set_param() { echo "param $*"; }
procd_close_instance() { echo "end"; }
procd_add_jail() { echo "jail $*"; }
procd_add_jail_mount() { echo "jail_mount $*"; }
procd_add_jail_mount_rw() { echo "jail_mount_rw $*"; }
procd_add_reload_trigger() { echo "reload_trigger $*"; }
procd_add_reload_interface_trigger() { echo "interface_trigger $*"; }

# syslog: what the script logs, on stdout beside procd's calls.
logger() { echo "logger $*"; }

# procd's running instances: RUNNING lists their names.
procd_running() { case " ${RUNNING:-} " in *" $2 "*) return 0 ;; esac; return 1; }
procd_send_signal() { echo "signal $*"; }
# rc.common's start, as reload_service calls it.
start() { start_service; }
