package GBrowseAWS::RenderFarmFix;
# Installed by the gmod.gbrowse_aws.balancer role (balancer_fix_gbrowse_renderfarm).
#
# GBrowse 2.56's render farm is broken as shipped: RenderPanels hands the PNG
# bytes a render slave returns to Bio::Graphics::Browser2::CachedTrack's
# put_data, which calls ->png on them ("Can't locate object method "png" via
# package "\x89PNG..."") and the page or gbrowse_img fails with HTTP 500.
#
# This module wraps put_data: bytes are passed on wrapped in an object whose
# png() returns them unchanged, so they are stored as they are; GD images
# (tracks rendered locally) go through untouched. Loaded through GBrowse's
# Apache configuration (PERL5OPT=-MGBrowseAWS::RenderFarmFix), it changes no
# file of the gbrowse package. Where put_data already accepts bytes, the
# wrapper is harmless: the object answers png() with the same bytes.
use strict;
use warnings;

our $VERSION = '1';

if (eval { require Bio::Graphics::Browser2::CachedTrack; 1 }) {
    my $put_data = \&Bio::Graphics::Browser2::CachedTrack::put_data;
    no warnings 'redefine';
    *Bio::Graphics::Browser2::CachedTrack::put_data = sub {
        my ($self, $gd, @rest) = @_;
        $gd = GBrowseAWS::RenderFarmFix::Bytes->new($gd) if defined $gd && !ref $gd;
        return $put_data->($self, $gd, @rest);
    };
}

package GBrowseAWS::RenderFarmFix::Bytes;

sub new { my ($class, $bytes) = @_; return bless \$bytes, $class }
sub png { my $self = shift; return $$self }

1;
