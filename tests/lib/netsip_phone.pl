#!/usr/bin/perl
# netsip_phone.pl - a Net::SIP softphone driven line by line (tests/lib/netsip.py).
#
# It registers one account, answers every incoming call by itself, places
# calls (with the SDP offer in the INVITE, or late: INVITE without SDP and
# the answer in the ACK), holds, sends REFER inside a dialog (blind, or with
# Replaces naming another of its dialogs), sends RFC 4733 digits and hangs
# up. Each call sends the raw PCMU file given with --send, round and round,
# and writes what it receives to <dir>/<name>.pcmu.
#
# Commands on stdin, one a line:
#   register | call NAME URI [late] | hold NAME | refer NAME URI [REPLACES_NAME]
#   | refer NAME URI CALL-ID;to-tag=T;from-tag=F (Replaces naming any dialog)
#   dtmf NAME DIGITS | bye NAME | quit
# Reports on stdout, one a line: registered EXPIRES | register-failed CODE |
#   answered NAME | failed NAME CODE | incoming NAME FROM | established NAME |
#   held NAME CODE | refer NAME CODE | notify NAME STATUS | closed NAME |
#   dialog NAME CALL-ID LOCAL-TAG REMOTE-TAG | error TEXT
use strict;
use warnings;
use Getopt::Long;
use IO::Handle;
use IO::Socket::INET;
use Net::SIP;
use Net::SIP::Util qw(invoke_callback);
use Net::SIP::Debug;
use Net::SIP::Simple::RTP;
use Net::SIP::Dispatcher::Eventloop;

my %o = (domain => 'demo.local');
GetOptions(\%o, 'server=s', 'user=s', 'pass=s', 'domain=s', 'send=s', 'dir=s')
    or die "usage: $0 --server IP:PORT --user U --pass P --send FILE.pcmu --dir DIR\n";
STDOUT->autoflush(1);
Net::SIP::Debug->level($ENV{NETSIP_DEBUG}) if $ENV{NETSIP_DEBUG}; # to stderr

sub say_line { print join(' ', @_), "\n" }

my $sock = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1', LocalPort => 0)
    or die "socket: $!";
my $ua = Net::SIP::Simple->new(
    from => "sip:$o{user}\@$o{domain}",
    leg => Net::SIP::Leg->new(sock => $sock),
    outgoing_proxy => $o{server},
    registrar => $o{server},
    domain => $o{domain},
    auth => [$o{user}, $o{pass}],
);

my %calls;    # name -> Net::SIP::Simple::Call
my $incoming = 0;

sub tag_of { my $h = shift // ''; return $h =~ /;\s*tag=([^;>\s]+)/ ? $1 : '' }

sub report_dialog {
    my $name = shift;
    my $ctx = $calls{$name} && $calls{$name}{ctx} or return;
    # the local side is From for calls we placed, To for calls we answered
    my $outgoing = $calls{$name}{param}{cw_outgoing};
    my ($local, $remote) = $outgoing ? ($ctx->{from}, $ctx->{to}) : ($ctx->{to}, $ctx->{from});
    say_line('dialog', $name, $ctx->{callid}, tag_of($local), tag_of($remote));
}

# Media without Net::SIP's 10 s inactivity hang-up (a held party sends nothing).
sub media_for {
    my $name = shift;
    return [ sub {
        my ($call, $args) = @_;
        my $lsocks = $args->{media_lsocks} or return;
        my $ssocks = $args->{media_ssocks} || $lsocks;
        my $raddr = $args->{media_raddr} || [];
        my $sock = $lsocks->[0];
        $sock = $sock->[0] if ref($sock) eq 'ARRAY';
        my %rstate = (dtmf_gen => $args->{dtmf_events});
        my $didit = 0;
        open(my $out, '>>', "$o{dir}/$name.pcmu") or die "$name.pcmu: $!";
        binmode $out;
        $out->autoflush(1);
        my $write = sub { my $payload = shift; my $pt = $_[3]; syswrite($out, $payload) if !$pt };
        $call->{loop}->addFD($sock, 0, [ sub {
            Net::SIP::Simple::RTP::_receive_rtp($sock, $write, \%rstate, \$didit, 0);
        } ], 'rtp_receive');
        my $timer;
        my $addr = $raddr->[0];
        $addr = $addr->[0] if ref($addr) eq 'ARRAY';
        if ($addr) {
            my $s = $ssocks->[0];
            $s = $s->[0] if ref($s) eq 'ARRAY';
            $timer = $call->{dispatcher}->add_timer(0, [ \&Net::SIP::Simple::RTP::_send_rtp,
                $s, $call->{loop}, $addr, $o{send}, 0,
                { repeat => -1, cb_done => sub {}, rtp_param => $args->{rtp_param},
                  dtmf_gen => $args->{dtmf_events} } ],
                $args->{rtp_param}[2], 'rtpsend');
        }
        push @{ $call->{rtp_cleanup} }, [ sub {
            $call->{loop}->delFD($sock);
            $timer->cancel if $timer;
            close($out);
        } ];
    } ];
}

sub call_params {
    my ($name, %extra) = @_;
    return (
        init_media => media_for($name),
        recv_bye => sub { say_line('closed', $name); delete $calls{$name} },
        cb_notify => sub {
            my ($call, $packet) = @_;
            my $body = ($packet->as_parts)[3] // "";
            my ($status) = $body =~ m{^SIP/2\.0\s+(\d{3})};
            say_line('notify', $name, $status // '-');
        },
        %extra,
    );
}

$ua->listen(
    cb_create => sub {
        my ($call, $request) = @_;
        my $name = 'in' . ++$incoming;
        $calls{$name} = $call;
        my %p = call_params($name,
            cb_established => sub { say_line('established', $name); report_dialog($name) });
        $call->set_param(%p);
        say_line('incoming', $name, $request->get_header('from') // '');
        return 1;
    },
);

sub command {
    my @w = split ' ', shift;
    my $cmd = shift(@w) // return;
    if ($cmd eq 'register') {
        $ua->register(expires => 120, cb_final => sub {
            my ($status, %info) = @_;
            $status eq 'OK' ? say_line('registered', $info{expires} // 0)
                            : say_line('register-failed', $info{code} // 0);
        });
    } elsif ($cmd eq 'call') {
        my ($name, $uri, $late) = @w;
        my $call;
        $call = $ua->invite($uri, call_params($name,
            sdp_on_ack => ($late ? 1 : 0),
            cw_outgoing => 1,
            cb_final => sub {
                my ($status, $c, %info) = @_;
                if ($status eq 'OK') {
                    $calls{$name} = $c;
                    say_line('answered', $name);
                    report_dialog($name);
                } else {
                    say_line('failed', $name, $info{code} // 0);
                }
            }));
        $calls{$name} = $call;
    } elsif ($cmd eq 'hold') {
        my $call = $calls{$w[0]} or return say_line('error', "no call $w[0]");
        $call->reinvite(call_on_hold => 1, cb_final => sub {
            my ($status, $c, %info) = @_;
            say_line('held', $w[0], $status eq 'OK' ? 200 : ($info{code} // 0));
        });
    } elsif ($cmd eq 'refer') {
        my ($name, $uri, $other) = @w;
        my $call = $calls{$name} or return say_line('error', "no call $name");
        my $to = $uri;
        if ($other && $other =~ /;/) {    # a dialog named outright, ours or not
            (my $rep = $other) =~ s/([^A-Za-z0-9\-_.!~*'()])/sprintf('%%%02X', ord($1))/ge;
            $to = "$uri?Replaces=$rep";
        } elsif ($other) {
            my $ctx = $calls{$other} && $calls{$other}{ctx}
                or return say_line('error', "no call $other");
            my $out = $calls{$other}{param}{cw_outgoing};
            my ($local, $remote) = $out ? ($ctx->{from}, $ctx->{to}) : ($ctx->{to}, $ctx->{from});
            my $rep = sprintf('%s;to-tag=%s;from-tag=%s', $ctx->{callid}, tag_of($remote),
                              tag_of($local));
            $rep =~ s/([^A-Za-z0-9\-_.!~*'()])/sprintf('%%%02X', ord($1))/ge;
            $to = "$uri?Replaces=$rep";
        }
        # Net::SIP::Simple::Call::request() would leave the dialog's later requests
        # (NOTIFY, BYE) to this one callback: pass them on to the call instead
        my $ctx = $call->{ctx};
        my $dialog = $ctx->{_callback};
        my $cb = sub {
            my ($endpoint, $c, $error, $code, $packet, $leg, $from) = @_;
            if ($packet && $packet->is_request) {
                return invoke_callback($dialog, $endpoint, $c, $error, $code, $packet, $leg,
                                       $from);
            }
            return if $code && $code =~ /^1/;
            $c->set_callback($dialog);
            say_line('refer', $name, $code // 0);
        };
        $call->{endpoint}->new_request('REFER', $ctx, $cb, undef, 'refer-to' => "<$to>",
                                       'referred-by' => "<sip:$o{user}\@$o{domain}>");
    } elsif ($cmd eq 'dtmf') {
        my $call = $calls{$w[0]} or return say_line('error', "no call $w[0]");
        $call->dtmf($w[1], methods => 'rfc2833', cb_final => sub {});
    } elsif ($cmd eq 'bye') {
        my $call = delete $calls{$w[0]} or return say_line('error', "no call $w[0]");
        $call->bye(cb_final => sub { say_line('bye-done', $w[0]) });
    } elsif ($cmd eq 'quit') {
        $ua->{loop}->delFD(\*STDIN);
        $_->bye for values %calls;
        %calls = ();
        $ua->loop(1);
        exit 0;
    } else {
        say_line('error', "unknown command $cmd");
    }
}

my $inbuf = '';
$ua->{loop}->addFD(\*STDIN, 0, [ sub {
    my $n = sysread(STDIN, my $chunk, 4096);
    return command('quit') if !$n;    # the test went away: end the calls and leave
    $inbuf .= $chunk;
    while ($inbuf =~ s/^([^\n]*)\n//) {
        my $line = $1;
        eval { command($line); 1 } or say_line('error', $@ =~ s/\s+/ /gr);
    }
} ], 'stdin');

$ua->loop;
