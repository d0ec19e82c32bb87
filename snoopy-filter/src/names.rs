//! Well-known names: named constants (`tcp-syn`), port names, IP protocol names and
//! Ethernet protocol names.
//!
//! libpcap resolves port and protocol names with `getservbyname`/`getprotobyname`, i.e.
//! through `/etc/services` and `/etc/protocols`. We read the same files when they exist, so
//! that `port http` means here exactly what it means to tcpdump on the same machine, and fall
//! back to a built-in copy of Debian's tables (minimal container images often lack the files).

use std::sync::OnceLock;

/// The named constants the scanner turns into numbers (`tcpflags`, `icmp-echo`, ...).
pub(crate) fn constant(name: &str) -> Option<u32> {
    Some(match name {
        "icmptype" => 0,
        "icmpcode" => 1,
        "icmp-echoreply" => 0,
        "icmp-unreach" => 3,
        "icmp-sourcequench" => 4,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-routeradvert" => 9,
        "icmp-routersolicit" => 10,
        "icmp-timxceed" => 11,
        "icmp-paramprob" => 12,
        "icmp-tstamp" => 13,
        "icmp-tstampreply" => 14,
        "icmp-ireq" => 15,
        "icmp-ireqreply" => 16,
        "icmp-maskreq" => 17,
        "icmp-maskreply" => 18,
        "icmp6type" => 0,
        "icmp6code" => 1,
        "icmp6-destinationunreach" => 1,
        "icmp6-packettoobig" => 2,
        "icmp6-timeexceeded" => 3,
        "icmp6-parameterproblem" => 4,
        "icmp6-echo" => 128,
        "icmp6-echoreply" => 129,
        "icmp6-multicastlistenerquery" => 130,
        "icmp6-multicastlistenerreportv1" => 131,
        "icmp6-multicastlistenerdone" => 132,
        "icmp6-routersolicit" => 133,
        "icmp6-routeradvert" => 134,
        "icmp6-neighborsolicit" => 135,
        "icmp6-neighboradvert" => 136,
        "icmp6-redirect" => 137,
        "icmp6-routerrenum" => 138,
        "icmp6-nodeinformationquery" => 139,
        "icmp6-nodeinformationresponse" => 140,
        "icmp6-ineighbordiscoverysolicit" => 141,
        "icmp6-ineighbordiscoveryadvert" => 142,
        "icmp6-multicastlistenerreportv2" => 143,
        "icmp6-homeagentdiscoveryrequest" => 144,
        "icmp6-homeagentdiscoveryreply" => 145,
        "icmp6-mobileprefixsolicit" => 146,
        "icmp6-mobileprefixadvert" => 147,
        "icmp6-certpathsolicit" => 148,
        "icmp6-certpathadvert" => 149,
        "icmp6-multicastrouteradvert" => 151,
        "icmp6-multicastroutersolicit" => 152,
        "icmp6-multicastrouterterm" => 153,
        "tcpflags" => 13,
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        _ => return None,
    })
}

/// Which transport protocols a port name was found for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortProto {
    /// Found for TCP and UDP with the same number: matches either (libpcap's `PROTO_UNDEF`).
    Any,
    /// Found for TCP only (or with a different number for UDP).
    Tcp,
    /// Found for UDP only.
    Udp,
}

/// `(name, port, protocol)` rows of a services file.
type Services = Vec<(String, u16, String)>;

/// Debian 12's `/etc/services`, the well-known part, used when the file is missing.
const BUILTIN_SERVICES: &str = "
tcpmux 1/tcp
echo 7/tcp
echo 7/udp
discard 9/tcp sink null
discard 9/udp sink null
systat 11/tcp users
daytime 13/tcp
daytime 13/udp
netstat 15/tcp
qotd 17/tcp quote
chargen 19/tcp ttytst source
chargen 19/udp ttytst source
ftp-data 20/tcp
ftp 21/tcp
fsp 21/udp fspd
ssh 22/tcp
telnet 23/tcp
smtp 25/tcp mail
time 37/tcp timserver
time 37/udp timserver
whois 43/tcp nicname
tacacs 49/tcp
tacacs 49/udp
domain 53/tcp
domain 53/udp
bootps 67/udp
bootpc 68/udp
tftp 69/udp
gopher 70/tcp
finger 79/tcp
http 80/tcp www
kerberos 88/tcp kerberos5 krb5 kerberos-sec
kerberos 88/udp kerberos5 krb5 kerberos-sec
iso-tsap 102/tcp tsap
acr-nema 104/tcp dicom
pop3 110/tcp pop-3
sunrpc 111/tcp portmapper
sunrpc 111/udp portmapper
auth 113/tcp authentication tap ident
nntp 119/tcp readnews untp
ntp 123/udp
epmap 135/tcp loc-srv
netbios-ns 137/udp
netbios-dgm 138/udp
netbios-ssn 139/tcp
imap2 143/tcp imap
snmp 161/tcp
snmp 161/udp
snmp-trap 162/tcp snmptrap
snmp-trap 162/udp snmptrap
cmip-man 163/tcp
cmip-man 163/udp
cmip-agent 164/tcp
cmip-agent 164/udp
mailq 174/tcp
xdmcp 177/udp
bgp 179/tcp
smux 199/tcp
qmtp 209/tcp
z3950 210/tcp wais
ipx 213/udp
ptp-event 319/udp
ptp-general 320/udp
pawserv 345/tcp
zserv 346/tcp
rpc2portmap 369/tcp
rpc2portmap 369/udp
codaauth2 370/tcp
codaauth2 370/udp
clearcase 371/udp Clearcase
ldap 389/tcp
ldap 389/udp
svrloc 427/tcp
svrloc 427/udp
https 443/tcp
https 443/udp
snpp 444/tcp
microsoft-ds 445/tcp
kpasswd 464/tcp
kpasswd 464/udp
submissions 465/tcp ssmtp smtps urd
saft 487/tcp
isakmp 500/udp
rtsp 554/tcp
rtsp 554/udp
nqs 607/tcp
asf-rmcp 623/udp
qmqp 628/tcp
ipp 631/tcp
ldp 646/tcp
ldp 646/udp
exec 512/tcp
biff 512/udp comsat
login 513/tcp
who 513/udp whod
shell 514/tcp cmd syslog
syslog 514/udp
printer 515/tcp spooler
talk 517/udp
ntalk 518/udp
route 520/udp router routed
gdomap 538/tcp
gdomap 538/udp
uucp 540/tcp uucpd
klogin 543/tcp
kshell 544/tcp krcmd
dhcpv6-client 546/udp
dhcpv6-server 547/udp
afpovertcp 548/tcp
nntps 563/tcp snntp
submission 587/tcp
ldaps 636/tcp
ldaps 636/udp
tinc 655/tcp
tinc 655/udp
silc 706/tcp
kerberos-adm 749/tcp
domain-s 853/tcp
domain-s 853/udp
rsync 873/tcp
ftps-data 989/tcp
ftps 990/tcp
telnets 992/tcp
imaps 993/tcp
pop3s 995/tcp
socks 1080/tcp
proofd 1093/tcp
rootd 1094/tcp
openvpn 1194/tcp
openvpn 1194/udp
rmiregistry 1099/tcp
lotusnote 1352/tcp lotusnotes
ms-sql-s 1433/tcp
ms-sql-m 1434/udp
ingreslock 1524/tcp
datametrics 1645/tcp old-radius
datametrics 1645/udp old-radius
sa-msg-port 1646/tcp old-radacct
sa-msg-port 1646/udp old-radacct
kermit 1649/tcp
groupwise 1677/tcp
l2f 1701/udp l2tp
radius 1812/tcp
radius 1812/udp
radius-acct 1813/tcp radacct
radius-acct 1813/udp radacct
cisco-sccp 2000/tcp
nfs 2049/tcp
nfs 2049/udp
gnunet 2086/tcp
gnunet 2086/udp
rtcm-sc104 2101/tcp
rtcm-sc104 2101/udp
gsigatekeeper 2119/tcp
gris 2135/tcp
cvspserver 2401/tcp
venus 2430/tcp
venus 2430/udp
venus-se 2431/tcp
venus-se 2431/udp
codasrv 2432/tcp
codasrv 2432/udp
codasrv-se 2433/tcp
codasrv-se 2433/udp
mon 2583/tcp
mon 2583/udp
dict 2628/tcp
f5-globalsite 2792/tcp
gsiftp 2811/tcp
gpsd 2947/tcp
gds-db 3050/tcp gds_db
icpv2 3130/udp icp
isns 3205/tcp
isns 3205/udp
iscsi-target 3260/tcp
mysql 3306/tcp
ms-wbt-server 3389/tcp
nut 3493/tcp
nut 3493/udp
distcc 3632/tcp
daap 3689/tcp
svn 3690/tcp subversion
suucp 4031/tcp
sysrqd 4094/tcp
sieve 4190/tcp
epmd 4369/tcp
remctl 4373/tcp
f5-iquery 4353/tcp
ntske 4460/tcp
ipsec-nat-t 4500/udp
iax 4569/udp
mtn 4691/tcp
radmin-port 4899/tcp
sip 5060/tcp
sip 5060/udp
sip-tls 5061/tcp
sip-tls 5061/udp
xmpp-client 5222/tcp jabber-client
xmpp-server 5269/tcp jabber-server
cfengine 5308/tcp
mdns 5353/udp
postgresql 5432/tcp postgres
freeciv 5556/tcp rptp
amqps 5671/tcp
amqp 5672/tcp
amqp 5672/sctp
x11 6000/tcp x11-0
x11-1 6001/tcp
x11-2 6002/tcp
x11-3 6003/tcp
x11-4 6004/tcp
x11-5 6005/tcp
x11-6 6006/tcp
x11-7 6007/tcp
gnutella-svc 6346/tcp
gnutella-svc 6346/udp
gnutella-rtr 6347/tcp
gnutella-rtr 6347/udp
redis 6379/tcp
sge-qmaster 6444/tcp sge_qmaster
sge-execd 6445/tcp sge_execd
mysql-proxy 6446/tcp
babel 6696/udp
ircs-u 6697/tcp
bbs 7000/tcp
afs3-fileserver 7000/udp
afs3-callback 7001/udp
afs3-prserver 7002/udp
afs3-vlserver 7003/udp
afs3-kaserver 7004/udp
afs3-volser 7005/udp
afs3-bos 7007/udp
afs3-update 7008/udp
afs3-rmtsys 7009/udp
font-service 7100/tcp xfs
http-alt 8080/tcp webcache
puppet 8140/tcp
bacula-dir 9101/tcp
bacula-fd 9102/tcp
bacula-sd 9103/tcp
xmms2 9667/tcp
nbd 10809/tcp
zabbix-agent 10050/tcp
zabbix-trapper 10051/tcp
amanda 10080/tcp
dicom 11112/tcp
hkp 11371/tcp
db-lsp 17500/tcp
dcap 22125/tcp
gsidcap 22128/tcp
wnn6 22273/tcp
";

/// Debian 12's `/etc/protocols`, used when the file is missing.
const BUILTIN_PROTOCOLS: &str = "
ip 0 IP
icmp 1 ICMP
igmp 2 IGMP
ggp 3 GGP
ipencap 4 IP-ENCAP
st 5 ST
tcp 6 TCP
egp 8 EGP
igp 9 IGP
pup 12 PUP
udp 17 UDP
hmp 20 HMP
xns-idp 22 XNS-IDP
rdp 27 RDP
iso-tp4 29 ISO-TP4
dccp 33 DCCP
xtp 36 XTP
ddp 37 DDP
idpr-cmtp 38 IDPR-CMTP
ipv6 41 IPv6
ipv6-route 43 IPv6-Route
ipv6-frag 44 IPv6-Frag
idrp 45 IDRP
rsvp 46 RSVP
gre 47 GRE
esp 50 IPSEC-ESP
ah 51 IPSEC-AH
skip 57 SKIP
ipv6-icmp 58 IPv6-ICMP
ipv6-nonxt 59 IPv6-NoNxt
ipv6-opts 60 IPv6-Opts
rspf 73 RSPF CPHB
vmtp 81 VMTP
eigrp 88 EIGRP
ospf 89 OSPFIGP
ax.25 93 AX.25
ipip 94 IPIP
etherip 97 ETHERIP
encap 98 ENCAP
pim 103 PIM
ipcomp 108 IPCOMP
vrrp 112 VRRP
l2tp 115 L2TP
isis 124 ISIS
sctp 132 SCTP
fc 133 FC
mobility-header 135 Mobility-Header
udplite 136 UDPLite
mpls-in-ip 137 MPLS-in-IP
manet 138
hip 139 HIP
shim6 140 Shim6
wesp 141 WESP
rohc 142 ROHC
ethernet 143 Ethernet
";

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

fn services() -> &'static Services {
    static TABLE: OnceLock<Services> = OnceLock::new();
    TABLE.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/services")
            .unwrap_or_else(|_| BUILTIN_SERVICES.to_string());
        let mut rows = Vec::new();
        for line in text.lines() {
            let mut words = strip_comment(line).split_whitespace();
            let (Some(name), Some(spec)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((num, proto)) = spec.split_once('/') else {
                continue;
            };
            let Ok(num) = num.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                rows.push((n.to_string(), num, proto.to_string()));
            }
        }
        rows
    })
}

fn service(name: &str, proto: &str) -> Option<u16> {
    // getservbyname returns the first matching line.
    services()
        .iter()
        .find(|(n, _, p)| n == name && p == proto)
        .map(|(_, port, _)| *port)
}

/// A port name as libpcap's `pcap_nametoport` resolves it.
pub(crate) fn port(name: &str) -> Option<(u16, PortProto)> {
    match (service(name, "tcp"), service(name, "udp")) {
        (Some(t), Some(u)) if t == u => Some((t, PortProto::Any)),
        (Some(t), _) => Some((t, PortProto::Tcp)),
        (None, Some(u)) => Some((u, PortProto::Udp)),
        (None, None) => None,
    }
}

/// A port range `a-b` as libpcap's `pcap_nametoportrange` resolves it.
///
/// Two numbers (`sscanf("%d-%d")`) are the range. Otherwise the text is cut at its *first*
/// hyphen and each side resolved as `pcap_nametoport` does (through `getaddrinfo`, which
/// takes a number as well as a service name): `smtp-25`, `25-domain`, `domain-smtp` and
/// `telnet-ftp-data` are ranges, while `ftp-data-telnet` is not (`ftp` and `data-telnet`,
/// no such service), exactly as in libpcap 1.10.
pub(crate) fn port_range(name: &str) -> Option<(u32, u32, PortProto)> {
    if let Some((a, b)) = scan_two_ints(name) {
        return Some((a, b, PortProto::Any));
    }
    let (first, second) = name.split_once('-')?;
    let (p1, proto1) = service_port(first)?;
    let (p2, proto2) = service_port(second)?;
    let proto = if proto1 == proto2 {
        proto2
    } else {
        PortProto::Any
    };
    Some((p1.into(), p2.into(), proto))
}

/// A port as `pcap_nametoport` finds it with `getaddrinfo(NULL, name)`: a number, for TCP
/// and UDP alike, or else a service name.
fn service_port(name: &str) -> Option<(u16, PortProto)> {
    match numeric_service(name) {
        Some(n) => Some((n, PortProto::Any)),
        None => port(name),
    }
}

/// A service given as a number, read the way glibc's `getaddrinfo` reads it: all digits
/// (`strtoul`, saturating on overflow), kept in an `int` — negative means "not a number",
/// and the name lookup then fails — and put in the 16-bit port field, so `99999` is port
/// 34463 and `4294967296` is port 0, as tcpdump shows.
fn numeric_service(name: &str) -> Option<u16> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = name.parse::<u64>().unwrap_or(u64::MAX);
    // Truncations of C's unsigned long -> int -> uint16_t conversions, deliberately.
    let n = v as u32 as i32;
    (n >= 0).then_some(n as u16)
}

/// `sscanf(s, "%d-%d")` succeeding with two conversions.
fn scan_two_ints(s: &str) -> Option<(u32, u32)> {
    fn int(s: &str) -> Option<(i64, &str)> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        Some((s[..digits].parse().ok()?, &s[digits..]))
    }
    let (a, rest) = int(s)?;
    let (b, _) = int(rest.strip_prefix('-')?)?;
    // %d stores an int; larger values are not meaningful ports and libpcap rejects them.
    Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?))
}

fn protocols() -> &'static Vec<(String, u32)> {
    static TABLE: OnceLock<Vec<(String, u32)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/protocols")
            .unwrap_or_else(|_| BUILTIN_PROTOCOLS.to_string());
        let mut rows = Vec::new();
        for line in text.lines() {
            let mut words = strip_comment(line).split_whitespace();
            let (Some(name), Some(num)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(num) = num.parse::<u32>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                rows.push((n.to_string(), num));
            }
        }
        rows
    })
}

/// An IP protocol name (`\tcp`, `ospf`) as `getprotobyname` resolves it.
pub(crate) fn ip_proto(name: &str) -> Option<u32> {
    protocols().iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// An Ethernet protocol name as libpcap's `pcap_nametoeproto` and `pcap_nametollc` resolve it.
pub(crate) fn ether_proto(name: &str) -> Option<u32> {
    Some(match name {
        "aarp" => 0x80f3,
        "arp" => 0x0806,
        "atalk" => 0x809b,
        "decnet" => 0x6003,
        "ip" => 0x0800,
        "ip6" => 0x86dd,
        "lat" => 0x6004,
        "loopback" => 0x9000,
        "mopdl" => 0x6001,
        "moprc" => 0x6002,
        "rarp" => 0x8035,
        "sca" => 0x6007,
        // LLC SAPs (pcap_nametollc).
        "iso" => 0xfe,
        "stp" => 0x42,
        "ipx" => 0xe0,
        "netbeui" => 0xf0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_libpcap() {
        assert_eq!(port("domain"), Some((53, PortProto::Any)));
        assert_eq!(port("ssh"), Some((22, PortProto::Tcp)));
        assert_eq!(port("no-such-service"), None);
        assert_eq!(port_range("1-5"), Some((1, 5, PortProto::Any)));
        // Names and numbers mixed, cut at the first hyphen (pcap_nametoportrange).
        assert_eq!(port_range("smtp-25"), Some((25, 25, PortProto::Any)));
        assert_eq!(port_range("25-domain"), Some((25, 53, PortProto::Any)));
        assert_eq!(port_range("ssh-http"), Some((22, 80, PortProto::Tcp)));
        assert_eq!(
            port_range("telnet-ftp-data"),
            Some((23, 20, PortProto::Tcp))
        );
        assert_eq!(port_range("ftp-data-telnet"), None);
        assert_eq!(port_range("smtp-99999"), Some((25, 34463, PortProto::Any)));
        assert_eq!(port_range("smtp-4294967296"), Some((25, 0, PortProto::Any)));
        assert_eq!(port_range("smtp-4294967295"), None);
        assert_eq!(port_range("smtp-"), None);
        assert_eq!(ip_proto("tcp"), Some(6));
        assert_eq!(ether_proto("ip6"), Some(0x86dd));
        assert_eq!(constant("tcp-ack"), Some(16));
    }
}
