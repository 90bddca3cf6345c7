package CwSip;
# CwSip - a callwright daemon for Perl SIP tests (Net::SIP), through the
# same code Python tests use (tests/lib/cwtest.py, via cwsip.py): free ports,
# a temp folder, the store seeded with demo.local and the users asked for,
# a clean stop.
#
#   my $d = CwSip::start(users => ['alice:101:secret1'], set => ['sip.keepalive=0']);
#   my $d = CwSip::start(demo => 1);   # the demo tenant (README), for tests that use the API
#   ... $d->{sip_port} ...
#   CwSip::stop($d);
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use JSON::PP;

my $LIB = dirname(File::Spec->rel2abs(__FILE__));

sub _run {
    my @cmd = @_;
    open(my $fh, '-|', @cmd) or die "cannot run @cmd: $!";
    local $/;
    my $out = <$fh>;
    close($fh) or die "@cmd failed: $?\n$out";
    return $out;
}

sub start {
    my %o = @_;
    my @args = ('python3', "$LIB/cwsip.py", 'start');
    push @args, '--demo' if $o{demo};
    push @args, '--set', $_ for @{ $o{set} || [] };
    push @args, '--user', $_ for @{ $o{users} || [] };
    my $out = _run(@args);
    my ($line) = grep { /^\{/ } split /\n/, $out;
    die "cwsip start: no description in: $out" unless $line;
    my $d = decode_json($line);
    $d->{json} = $line;
    return $d;
}

sub stop {
    my $d = shift;
    return unless $d && $d->{json};
    _run('python3', "$LIB/cwsip.py", 'stop', $d->{json});
    delete $d->{json};
}

# One REST API request as a user ("sysadmin", or "admin\@demo.local"): {status, json}.
#   CwSip::api($d, 'sysadmin', 'Demo-sysadmin-1', 'POST', '/api/v1/...', {name => 'x'})
sub api {
    my ($d, $login, $password, $method, $path, $body) = @_;
    my @args = ('python3', "$LIB/cwsip.py", 'api', $d->{json}, $login, $password, $method, $path);
    push @args, encode_json($body) if $body;
    return decode_json(_run(@args));
}

# Rows of a query as arrays of strings.
sub sql {
    my ($d, $sql) = @_;
    return decode_json(_run('python3', "$LIB/cwsip.py", 'sql', $d->{json}, $sql));
}

# The daemon's log so far.
sub log_text {
    my $d = shift;
    open(my $fh, '<', $d->{log}) or return '';
    local $/;
    return <$fh>;
}

1;
