#!/usr/bin/perl
# cw-test: both-stores
# Registration with Net::SIP: the right password registers, a wrong one gets
# 403, an unknown domain 404; five failures from one address ban it and its
# sixth REGISTER (even with the right password) gets no answer, while other
# addresses carry on.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use CwSip;
use IO::Socket::INET;
use Net::SIP;

my $failed = 0;
sub check {
    my ($ok, $what) = @_;
    print(($ok ? "ok   " : "FAIL ") . "$what\n");
    $failed++ unless $ok;
}

my $d = CwSip::start(users => ['alice:101:secret1', 'bob:102:secret2'],
                     set => ['sip.keepalive=0']);
my $port = $d->{sip_port};

# Register from a given local address; returns ('OK', expires) or ('FAIL', code)
# or ('NONE') when nothing came back within $wait seconds.
sub try_register {
    my (%a) = @_;
    # a socket on a free port of the given loopback address
    my $sock = IO::Socket::INET->new(Proto => 'udp', LocalAddr => $a{ip} || '127.0.0.1',
                                     LocalPort => 0) or die "socket: $!";
    my $ua = Net::SIP::Simple->new(
        from => "sip:$a{user}\@$a{domain}",
        leg => Net::SIP::Leg->new(sock => $sock),
        outgoing_proxy => "127.0.0.1:$port",
        registrar => "sip:$a{domain}",
        auth => [$a{user}, $a{pass}],
    );
    my ($result, %info);
    my $done = 0;
    $ua->register(expires => 60, cb_final => sub {
        ($result, %info) = @_;
        $done = 1;
    });
    $ua->loop($a{wait} || 5, \$done);
    $ua->cleanup;
    return ('NONE') unless $done;
    return $result eq 'OK' ? ('OK', $info{expires}) : ('FAIL', $info{code});
}

eval {
    my ($r, $v) = try_register(user => 'alice', pass => 'secret1', domain => 'demo.local');
    check($r eq 'OK' && $v == 60, "right password registers (expires $v)");
    my $rows = CwSip::sql($d, "SELECT contact, user_agent FROM registrations");
    check(scalar(@$rows == 1 && $rows->[0][0] =~ /^sip:alice\@127\.0\.0\.1:\d+$/),
          "the binding is in the store ($rows->[0][0])");

    ($r, $v) = try_register(user => 'bob', pass => 'nope', domain => 'demo.local');
    check($r eq 'FAIL' && $v == 403, "wrong password gets 403");
    ($r, $v) = try_register(user => 'bob', pass => 'secret2', domain => 'nowhere.example');
    check($r eq 'FAIL' && $v == 404, "unknown domain gets 404");

    # brute force from 127.0.0.3: five failures, then silence
    for my $i (1 .. 5) {
        ($r, $v) = try_register(user => 'bob', pass => "guess$i", domain => 'demo.local',
                                ip => '127.0.0.3');
        check($r eq 'FAIL' && $v == 403, "bad password $i from 127.0.0.3 gets 403");
    }
    ($r) = try_register(user => 'bob', pass => 'secret2', domain => 'demo.local',
                        ip => '127.0.0.3', wait => 4);
    check($r eq 'NONE', "the 6th REGISTER from 127.0.0.3 gets no answer at all");
    ($r) = try_register(user => 'bob', pass => 'secret2', domain => 'demo.local');
    check($r eq 'OK', "127.0.0.1 still registers");
    my $log = CwSip::log_text($d);
    check($log =~ /banned 127\.0\.0\.3 for 600 s: 5 failed authentications/,
          "the ban is logged");
};
if ($@) {
    print "FAIL exception: $@";
    $failed++;
}
CwSip::stop($d);
print "$failed check(s) failed\n" if $failed;
exit($failed ? 1 : 0);
