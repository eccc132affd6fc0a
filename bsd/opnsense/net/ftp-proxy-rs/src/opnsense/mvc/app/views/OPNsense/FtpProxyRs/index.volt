{#
 # The instances of ftp-proxy: a grid, an edit dialog, Apply.
 # ISC License, the ftp-proxy developers.
 #}
<script>
    $(document).ready(function () {
        $("#grid-instances").UIBootgrid({
            search: '/api/ftpproxyrs/settings/searchInstance',
            get: '/api/ftpproxyrs/settings/getInstance/',
            set: '/api/ftpproxyrs/settings/setInstance/',
            add: '/api/ftpproxyrs/settings/addInstance/',
            del: '/api/ftpproxyrs/settings/delInstance/',
            toggle: '/api/ftpproxyrs/settings/toggleInstance/'
        });
        $("#reconfigureAct").SimpleActionButton();
    });
</script>

<div class="content-box">
    <table id="grid-instances" class="table table-condensed table-hover table-striped" data-editDialog="DialogInstance" data-editAlert="instanceChangeMessage">
        <thead>
            <tr>
                <th data-column-id="uuid" data-type="string" data-identifier="true" data-visible="false">{{ lang._('ID') }}</th>
                <th data-column-id="enabled" data-width="6em" data-type="string" data-formatter="rowtoggle">{{ lang._('Enabled') }}</th>
                <th data-column-id="listenaddress" data-type="string">{{ lang._('Listen address') }}</th>
                <th data-column-id="listenport" data-type="string">{{ lang._('Port') }}</th>
                <th data-column-id="reverseaddress" data-type="string">{{ lang._('Reverse server') }}</th>
                <th data-column-id="description" data-type="string">{{ lang._('Description') }}</th>
                <th data-column-id="commands" data-width="7em" data-formatter="commands" data-sortable="false">{{ lang._('Commands') }}</th>
            </tr>
        </thead>
        <tbody></tbody>
        <tfoot>
            <tr>
                <td></td>
                <td>
                    <button data-action="add" type="button" class="btn btn-xs btn-primary"><span class="fa fa-fw fa-plus"></span></button>
                    <button data-action="deleteSelected" type="button" class="btn btn-xs btn-default"><span class="fa fa-fw fa-trash-o"></span></button>
                </td>
            </tr>
        </tfoot>
    </table>
    <div class="col-md-12">
        <div id="instanceChangeMessage" class="alert alert-info" style="display: none" role="alert">
            {{ lang._('After changing settings, please remember to apply them.') }}
        </div>
        <p>{{ lang._('pf needs a port forward of TCP port 21 on each client interface to the instance\'s listen address and port.') }}</p>
        <button class="btn btn-primary" id="reconfigureAct" data-endpoint="/api/ftpproxyrs/service/reconfigure" data-label="{{ lang._('Apply') }}" type="button"></button>
    </div>
</div>

{{ partial("layout_partials/base_dialog",['fields':formDialogInstance,'id':'DialogInstance','label':lang._('Edit instance')]) }}
